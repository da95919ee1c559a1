"""The torch.compile path gives the same loss and gradient as the eager path (and the formula)."""
import pytest
import torch

from mmdet_asl import functional


@pytest.fixture
def compiled(monkeypatch):
    monkeypatch.setenv('MMDET_ASL_COMPILE', '1')
    yield
    assert not functional._compile_failed, 'torch.compile failed and fell back to eager'


@pytest.mark.parametrize('clip', [0.0, 0.05])
def test_compiled_matches_eager(compiled, clip, monkeypatch):
    torch.manual_seed(0)
    n, c = 3000, 17
    z = (torch.rand(n, c) * 40 - 20).requires_grad_(True)
    labels = torch.randint(0, c + 1, (n, ))
    weight = torch.rand(n)
    results = []
    for flag in ('1', '0'):
        monkeypatch.setenv('MMDET_ASL_COMPILE', flag)
        for gamma_neg in (4.0, 2.5):  # a new gamma_neg must not need a new compilation to be right
            loss = functional.asymmetric_loss(z, labels, weight, gamma_pos=1.0, gamma_neg=gamma_neg, clip=clip,
                                              reduce=True)
            grad, = torch.autograd.grad(loss, z)
            results.append((loss, grad))
    for (l_c, g_c), (l_e, g_e) in zip(results[:2], results[2:]):
        torch.testing.assert_close(l_c, l_e, rtol=1e-5, atol=0)
        torch.testing.assert_close(g_c, g_e, rtol=1e-5, atol=1e-9)
    assert not torch.allclose(results[0][0], results[1][0])
