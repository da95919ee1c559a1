import pytest
from mmengine.registry import DefaultScope

# MMEngine's default scope is process-global. A Runner or ``register_all_modules()`` makes its scope current,
# and a later ``mmdet.registry.MODELS.build`` would then look in that scope's registry (e.g. MMPretrain's).
# Module fixtures build Runners too, before any per-test snapshot, so every test starts from the scopes that
# existed when the suite started (none), and ends there.
SCOPES_AT_START = dict(DefaultScope._instance_dict)


def _reset_scopes():
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(SCOPES_AT_START)


@pytest.fixture(autouse=True)
def isolate_default_scope():
    _reset_scopes()
    yield
    _reset_scopes()
