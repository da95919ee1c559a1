"""Both kernels, eager and compiled, against the one specification (ops/asl/reference.py): values and
gradients in float32 and float64, gradcheck at the kink p = m, probe sums, per-class gamma-, weights,
soft targets. Cases share configurations so that the compiled path compiles each one once.
``MMDET_ASL_TEST_DEVICE=cuda`` runs them on the GPU (tools/benchmarks/gpu_check.sh)."""
import math
import os

import pytest
import torch

from mmdet_asl.ops.asl import asymmetric_loss, asymmetric_loss_reference, probe_sums_reference
from mmdet_asl.ops.asl.reference import dense_target

IMPLS = ['eager', 'compiled']
DEVICE = os.environ.get('MMDET_ASL_TEST_DEVICE', 'cpu')
# (gamma_pos, gamma_neg, clip, alpha, focusing_grad): the paper's classification setting, and the detection
# setting with the static weighting and the detached focusing gradient.
CASES = [(0.0, 4.0, 0.05, None, 'full'), (1.0, 2.0, 0.0, 0.25, 'detached')]


def make_inputs(kind, n=96, c=12, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    z = (torch.rand(n, c, generator=g, dtype=torch.float64) * 40 - 20)
    kink = math.log(0.05 / 0.95)
    z[: n // 4, : c // 2] = kink + (torch.rand(n // 4, c // 2, generator=g, dtype=torch.float64) - 0.25) * 1e-3
    if kind == 'index':
        target = torch.randint(0, c + 1, (n, ), generator=g)
    elif kind == 'dense':
        target = (torch.rand(n, c, generator=g) < 0.3).to(dtype)
    else:
        target = torch.rand(n, c, generator=g).to(dtype)
    weight = torch.rand(n, 1, generator=g).to(dtype).flatten()
    return z.to(dtype).to(DEVICE), target.to(DEVICE), weight.to(DEVICE)


def reference_and_grad(z, target, weight, gp, gn, m, alpha, mode):
    z64 = z.detach().double().requires_grad_(True)
    y = dense_target(target, z.shape[1])
    ref = asymmetric_loss_reference(z64, y, gp, gn, m, alpha=alpha, focusing_grad=mode) * weight.double().view(-1, 1)
    grad, = torch.autograd.grad(ref.sum(), z64)
    return ref.detach(), grad


@pytest.mark.parametrize('impl', IMPLS)
@pytest.mark.parametrize('case', CASES)
@pytest.mark.parametrize('kind', ['index', 'dense', 'soft'])
def test_values_and_gradients_match_reference(impl, case, kind):
    """float32 logits on [-20, 20] and next to the kink p = m, against the float64 specification."""
    gp, gn, m, alpha, mode = case
    z, target, weight = make_inputs(kind)
    z.requires_grad_(True)
    loss = asymmetric_loss(z, target, weight, gp, gn, m, alpha=alpha, focusing_grad=mode, impl=impl)
    grad, = torch.autograd.grad(loss.sum(), z)
    ref, ref_grad = reference_and_grad(z, target, weight, gp, gn, m, alpha, mode)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), ref, rtol=1e-6, atol=1e-12)
    # A soft target adds a positive and a negative gradient of opposite signs, each O(1): their float32
    # rounding (1e-7) is what remains where they cancel.
    torch.testing.assert_close(grad.double(), ref_grad, rtol=1e-5, atol=1e-7 if kind == 'soft' else 1e-9)


@pytest.mark.parametrize('impl', IMPLS)
@pytest.mark.parametrize('kind', ['index', 'soft'])
def test_float64_gradcheck_at_the_kink(impl, kind):
    """Analytic gradient against finite differences in float64, with slots at the kink p = m."""
    gp, gn, m, alpha, mode = CASES[0]
    z, target, weight = make_inputs(kind, n=6, c=5, seed=1, dtype=torch.float64)
    z = z * 0.3  # on [-6, 6]: finite differences of a loss near 20 would carry 1e-8 of rounding
    if kind == 'index':
        target[0] = 5
    z[0, :3] = torch.logit(torch.tensor(m, dtype=torch.float64)) + torch.tensor([0.0, 1e-9, -1e-9],
                                                                                dtype=torch.float64)
    z.requires_grad_(True)

    def fn(x):
        return asymmetric_loss(x, target, weight, gp, gn, m, alpha=alpha, focusing_grad=mode, impl=impl)

    assert torch.autograd.gradcheck(fn, (z, ), eps=1e-7, atol=1e-8)
    grad, = torch.autograd.grad(fn(z).sum(), z)
    ref, ref_grad = reference_and_grad(z, target, weight, gp, gn, m, alpha, mode)
    torch.testing.assert_close(fn(z).detach(), ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-10, atol=1e-12)
    if kind == 'index':
        assert target[0] == 5 and grad[0, 2] == 0  # a background row below the margin: exactly nothing


@pytest.mark.parametrize('impl', IMPLS)
@pytest.mark.parametrize('kind', ['index', 'soft'])
def test_probe_sums_and_scaled_sum(impl, kind):
    """Summed loss with a tensor scale and the probe sums of the same pass, against the specification."""
    gp, gn, m, alpha, mode = CASES[1]
    z, target, weight = make_inputs(kind, seed=2)
    weight[::7] = 0.0  # slots with weight 0 are left out of the probe
    scale = torch.tensor(0.3, device=DEVICE)
    loss, sums = asymmetric_loss(z, target, weight, gp, gn, m, alpha=alpha, focusing_grad=mode, reduce=True,
                                 scale=scale, return_probe=True, impl=impl)
    ref, _ = reference_and_grad(z, target, weight, gp, gn, m, alpha, mode)
    torch.testing.assert_close(loss.double(), 0.3 * ref.sum(), rtol=1e-6, atol=0)
    torch.testing.assert_close(sums, probe_sums_reference(z, target, weight), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('impl', IMPLS)
@pytest.mark.parametrize('kind', ['index', 'dense'])
def test_per_class_and_tensor_gamma_neg(impl, kind):
    """gamma- as a (C,) tensor (one per class) and as a 0-dim tensor equal the specification's broadcast."""
    gp, _, m, alpha, mode = CASES[0]
    z, target, weight = make_inputs(kind, seed=3)
    z.requires_grad_(True)
    for gamma_neg in (torch.linspace(0.0, 5.0, z.shape[1], device=DEVICE), torch.tensor(2.5, device=DEVICE)):
        loss = asymmetric_loss(z, target, weight, gp, gamma_neg, m, alpha=alpha, focusing_grad=mode, impl=impl)
        grad, = torch.autograd.grad(loss.sum(), z)
        ref, ref_grad = reference_and_grad(z, target, weight, gp, gamma_neg.double(), m, alpha, mode)
        torch.testing.assert_close(loss.double(), ref, rtol=1e-6, atol=1e-12)
        torch.testing.assert_close(grad.double(), ref_grad, rtol=1e-5, atol=1e-9)


# the compiled path compiles each configuration: two of the four
@pytest.mark.parametrize('impl,mode,gp,gn', [(impl, mode, gp, gn) for mode in ('full', 'detached')
                                             for gp, gn in ((0.0, 0.0), (2.0, 3.0)) for impl in IMPLS
                                             if impl == 'eager' or (mode == 'full') == (gp > 0)])
def test_log_floor_leaves_no_gradient_of_the_log(impl, mode, gp, gn):
    """eps > 0 floors log p and log(1 - p) (m = 0) at log eps: where the floor is active the log is constant
    and only the focusing weight's derivative remains (none when detached). By hand, in float64, for
    p = sigmoid(z), L = log eps:
      floored positive (p < eps):        loss -(1-p)^g+ L,  d/dz = g+ p (1-p)^g+ L       (full), 0 (detached)
      floored negative (1 - p < eps):    loss -p^g- L,      d/dz = -g- p^g- (1-p) L      (full), 0 (detached)
      free positive:                     loss -(1-p)^g+ log p, d/dz = -(1-p)^g+ [(1-p) - g+ p log p] (full)
      free negative:                     loss -p^g- log(1-p),  d/dz = p^g- [p - g- (1-p) log(1-p)]   (full)
    (detached: the g terms in the brackets drop out)."""
    eps = 1e-3
    log_eps = math.log(eps)
    # columns: floored positive (p = 3.4e-4, 6.1e-6), free positive (p = 6.7e-3); floored negative (1 - p =
    # 3.4e-4), free negative (1 - p = 6.7e-3)
    z_row = [-8.0, -12.0, -5.0, 8.0, 5.0]
    y_row = [1.0, 1.0, 1.0, 0.0, 0.0]
    full = mode == 'full'
    loss_hand, grad_hand = [], []
    for z, y in zip(z_row, y_row):
        p = 1 / (1 + math.exp(-z))
        if y == 1 and p < eps:
            loss_hand.append(-(1 - p) ** gp * log_eps)
            grad_hand.append(gp * p * (1 - p) ** gp * log_eps if full else 0.0)
        elif y == 1:
            loss_hand.append(-(1 - p) ** gp * math.log(p))
            grad_hand.append(-(1 - p) ** gp * ((1 - p) - (gp * p * math.log(p) if full else 0.0)))
        elif 1 - p < eps:
            loss_hand.append(-p ** gn * log_eps)
            grad_hand.append(-gn * p ** gn * (1 - p) * log_eps if full else 0.0)
        else:
            loss_hand.append(-p ** gn * math.log(1 - p))
            grad_hand.append(p ** gn * (p - (gn * (1 - p) * math.log(1 - p) if full else 0.0)))
    loss_hand = torch.tensor([loss_hand], dtype=torch.float64)
    grad_hand = torch.tensor([grad_hand], dtype=torch.float64)
    dense = torch.tensor([y_row], dtype=torch.float64)
    z = torch.tensor([z_row], dtype=torch.float64, requires_grad=True)
    ref = asymmetric_loss_reference(z, dense, gp, gn, 0.0, eps=eps, focusing_grad=mode)
    results = {'reference': (ref, torch.autograd.grad(ref.sum(), z)[0])}
    # index labels: rows of one positive each; the dense row as one row per column, label C = background
    # for the negatives
    for kind, target in (('dense', dense), ('index', None)):
        if kind == 'index':
            zi = torch.diag_embed(torch.tensor(z_row, dtype=torch.float64)).requires_grad_(True)
            labels = torch.tensor([i if y == 1 else len(z_row) for i, y in enumerate(y_row)])
            loss = asymmetric_loss(zi, labels, gamma_pos=gp, gamma_neg=gn, clip=0.0, eps=eps, focusing_grad=mode,
                                   impl=impl)
            grad, = torch.autograd.grad(loss.sum(), zi)
            results[kind] = (loss.diagonal().unsqueeze(0), grad.diagonal().unsqueeze(0))
        else:
            loss = asymmetric_loss(z, target, gamma_pos=gp, gamma_neg=gn, clip=0.0, eps=eps, focusing_grad=mode,
                                   impl=impl)
            results[kind] = (loss, torch.autograd.grad(loss.sum(), z)[0])
    for name, (loss, grad) in results.items():
        torch.testing.assert_close(loss.detach(), loss_hand, rtol=1e-12, atol=0, msg=name)
        torch.testing.assert_close(grad, grad_hand, rtol=1e-9, atol=1e-300, msg=name)
    if gp == 0 or not full:
        assert all(float(g[0, 0]) == 0 and float(g[0, 1]) == 0 for _, g in results.values())
