
# Tests exercise the eager kernels by default (compiling every variant would take minutes on 2 cores);
# tests/test_loss_compiled.py turns torch.compile on explicitly.


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def isolate_default_scope():
    """MMEngine's default scope is process-global: a test that builds an MMPretrain runner leaves
    'mmpretrain' current, and a later ``mmdet.registry.MODELS.build`` would then look in MMPretrain's
    registry. Restore the scopes that existed before each test."""
    from mmengine.registry import DefaultScope
    before = dict(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(before)
