import os

# Tests exercise the eager kernels by default (compiling every variant would take minutes on 2 cores);
# tests/test_loss_compiled.py turns torch.compile on explicitly.
os.environ.setdefault('MMDET_ASL_COMPILE', '0')
