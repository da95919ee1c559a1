"""The ``kernel_path`` fixture: a test runs once on the eager kernel and once through torch.compile."""
import pytest

from mmdet_asl.ops.asl import function


def compile_failed() -> bool:
    """Whether the compiler failed in this process (the eager kernel then computes instead)."""
    return function._compiler_failure is not None


@pytest.fixture(name='kernel_path', params=['eager', 'compiled'])
def kernel_path_fixture(request):
    """The loss's ``impl``."""
    yield request.param
    assert not compile_failed(), 'torch.compile failed and the eager kernel took over'
