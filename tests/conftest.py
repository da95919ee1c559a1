import pytest


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
