"""The ``kernel_path`` fixture: a test runs once on the eager kernel and once through torch.compile."""
import importlib

import pytest


def compile_failed() -> bool:
    """Whether the compiled kernel fell back to eager in this process."""
    for module in ('mmdet_asl.ops.asl.function', 'mmdet_asl.functional'):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        if hasattr(mod, '_compile_failed'):
            return bool(mod._compile_failed)
    return False


@pytest.fixture(params=['eager', 'compiled'])
def kernel_path(request, monkeypatch):
    monkeypatch.setenv('MMDET_ASL_COMPILE', '1' if request.param == 'compiled' else '0')
    yield request.param
    assert not compile_failed(), 'torch.compile failed and the eager kernel took over'
