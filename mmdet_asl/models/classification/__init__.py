"""Single-label classification pieces for MMPretrain (registered in MMPretrain's ``MODELS``).

The paper's single-label ASL (appendix H) is the multi-label sigmoid ASL on one-hot targets:
``type='mmdet.AsymmetricLoss'`` in a ``LinearClsHead`` (class indices are one-hot inside the loss). Its twins
are MMPretrain's ``CrossEntropyLoss`` and the softmax focal loss here.
"""
from .softmax_focal_loss import SoftmaxFocalLoss, softmax_focal_loss

__all__ = ['SoftmaxFocalLoss', 'softmax_focal_loss']
