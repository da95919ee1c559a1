"""Mixed precision: half/bfloat16 inputs and autocast give finite loss and gradients for logits in +-60.

The official repository's fp16 NaN came from eps = 1e-8 underflowing to 0 in half precision and
log(0) * 0; the loss here always computes in float32.
"""
import pytest
import torch

from mmdet_asl.models import AsymmetricLoss

SETTINGS = [dict(gamma_pos=0, gamma_neg=4, clip=0.05), dict(gamma_pos=1, gamma_neg=2, clip=0.0),
            dict(gamma_pos=0, gamma_neg=0, clip=0.0), dict(gamma_pos=1, gamma_neg=4, clip=0.05,
                                                           focusing_grad='detached')]
DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])


def extreme_logits(dtype, device):
    z = torch.linspace(-60, 60, 241, device=device).view(-1, 1).repeat(1, 3).to(dtype)
    return z


@pytest.mark.parametrize('settings', SETTINGS)
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('device', DEVICES)
def test_half_inputs_finite(settings, dtype, device):
    z = extreme_logits(dtype, device).requires_grad_(True)
    n = z.shape[0]
    for target in (torch.randint(0, 4, (n, ), device=device), torch.ones(n, 3, device=device, dtype=dtype),
                   torch.zeros(n, 3, device=device, dtype=dtype)):
        loss = AsymmetricLoss(**settings)(z, target, avg_factor=5.0)
        grad, = torch.autograd.grad(loss, z)
        assert loss.dtype == torch.float32
        assert torch.isfinite(loss) and torch.isfinite(grad).all() and grad.dtype == dtype
        # same value as the float32 computation (inputs are exactly representable)
        ref = AsymmetricLoss(**settings)(z.detach().float(), target.float() if target.dim() == 2 else target,
                                         avg_factor=5.0)
        torch.testing.assert_close(loss, ref)


@pytest.mark.parametrize('settings', SETTINGS)
@pytest.mark.parametrize('device', DEVICES)
def test_under_autocast(settings, device):
    dtype = torch.bfloat16 if device == 'cpu' else torch.float16
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 3).to(device)
    x = torch.randn(241, 8, device=device)
    with torch.no_grad():
        layer.weight.mul_(20)  # logits spanning tens
    target = torch.randint(0, 4, (241, ), device=device)
    with torch.autocast(device_type=device, dtype=dtype):
        z = layer(x)
        assert z.dtype == dtype
        loss = AsymmetricLoss(**settings)(z, target)
    loss.backward()
    assert z.abs().max() > 30
    assert torch.isfinite(loss) and torch.isfinite(layer.weight.grad).all()
