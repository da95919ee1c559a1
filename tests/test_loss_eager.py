"""What the eager kernel does differently from the fused one changes nothing: its sigmoid parts (single-operator
sigmoids) equal the shared-exponential ones, its float32 CPU sum stays as accurate as a float64 one, and its
in-place operations touch only tensors it made."""
import pytest
import torch

from mmdet_asl.ops.asl import ASLParams, apply_asymmetric_loss, asymmetric_loss, asymmetric_loss_reference
from mmdet_asl.ops.asl.kernel import sigmoid_parts
from mmdet_asl.ops.asl.reference import dense_target

# Both sides of the kink of m = 0.05 (logit -2.944), saturation in float32 (|z| > 88) and float64.
LOGITS = [-800.0, -100.0, -88.8, -40.0, -18.5, -2.9445, -2.944, -2.9439, -1e-3, 0.0, 1e-3, 2.0, 18.5, 40.0,
          88.8, 100.0, 800.0]


def fused_parts(z, clip, need_log_p, monkeypatch):
    """The parts as the compiled kernel computes them (one exponential), evaluated eagerly."""
    with monkeypatch.context() as patch:
        patch.setattr(torch.compiler, 'is_compiling', lambda: True)
        return sigmoid_parts(z, clip, need_log_p)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('clip', [0.0, 0.05, 'tensor'])
@pytest.mark.parametrize('need_log_p', [True, False])
def test_eager_sigmoid_parts_equal_fused(dtype, clip, need_log_p, monkeypatch):
    z = torch.tensor(LOGITS, dtype=dtype).repeat(3, 1)
    z = torch.cat([z, torch.linspace(-30, 30, z.shape[1], dtype=dtype).unsqueeze(0)])
    if clip == 'tensor':   # an adaptive per-class margin
        clip = torch.linspace(0.0, 0.3, z.shape[1], dtype=dtype)
    eager = sigmoid_parts(z, clip, need_log_p)
    fused = fused_parts(z, clip, need_log_p, monkeypatch)
    tol = dict(rtol=2e-6, atol=1e-38) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-16)
    for name in eager._fields:
        a, b = getattr(eager, name), getattr(fused, name)
        if a is None or b is None:   # log p, not asked for
            assert a is None and b is None and name == 'log_p' and not need_log_p
            continue
        torch.testing.assert_close(a, b, **tol, msg=lambda m, name=name: f'{name}: {m}')


@pytest.mark.parametrize('gp,gn,m', [(1.0, 2.0, 0.0), (0.0, 4.0, 0.05)])
def test_float32_sum_matches_float64(gp, gn, m):
    """A million terms summed by the eager CPU kernel in float32 agree with the float64 formula's sum."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2000, 500, generator=g) * 3 - 4
    labels = torch.randint(0, 501, (2000, ), generator=g)
    loss = asymmetric_loss(z, labels, gamma_pos=gp, gamma_neg=gn, clip=m, reduce=True)
    expected = asymmetric_loss_reference(z.double(), dense_target(labels, 500), gp, gn, m).sum()
    assert abs(loss.item() - expected.item()) <= 2e-6 * expected.item()


@pytest.mark.parametrize('index', [True, False])
@pytest.mark.parametrize('clip', [0.0, 0.05, 'tensor'])
@pytest.mark.parametrize('reduce', [True, False])
def test_inputs_unchanged(index, clip, reduce):
    """float64 logits are computed on without a copy: the kernel's in-place steps must not reach them."""
    g = torch.Generator().manual_seed(1)
    z = (torch.randn(50, 6, generator=g, dtype=torch.float64) * 4).requires_grad_()
    labels = torch.randint(0, 7, (50, ), generator=g)
    target = labels if index else dense_target(labels, 6)
    clip = torch.full((6, ), 0.1, dtype=torch.float64) if clip == 'tensor' else clip
    before, target_before = z.detach().clone(), target.clone()
    if isinstance(clip, torch.Tensor):
        loss = apply_asymmetric_loss(z, target, None, ASLParams(1.0, 2.0, 0.0), reduce=reduce, clip=clip)
    else:
        loss = asymmetric_loss(z, target, gamma_pos=1.0, gamma_neg=2.0, clip=clip, reduce=reduce)
    loss.sum().backward()
    assert torch.equal(z.detach(), before) and torch.equal(target, target_before)
