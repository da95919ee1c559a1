"""The loss equals the paper's formula (Eq. 7), its analytic gradient equals autograd, and it coincides
with BCE and MMDetection's FocalLoss where the paper says it should."""
import itertools

import pytest
import torch
import torch.nn.functional as F

from mmdet_asl.ops.asl import asymmetric_loss, asymmetric_loss_reference

MODES = ('full', 'detached')


def formula_float64(z, y, gp, gn, m, eps=0.0, alpha=None):
    """Eq. 7 transcribed in float64, element-wise; eps > 0 floors the logs as the official implementation."""
    z, y = z.double(), y.double()
    p = torch.sigmoid(z)
    p_m = torch.clamp(p - m, min=0)
    l_pos = (1 - p) ** gp * torch.log(torch.clamp(p, min=eps))
    l_neg = p_m ** gn * torch.log(torch.clamp(1 - p_m, min=eps))
    a_pos, a_neg = (1, 1) if alpha is None else (alpha, 1 - alpha)
    return -(a_pos * y * l_pos + a_neg * (1 - y) * l_neg)


def random_case(n=64, c=20, seed=0, lo=-20, hi=20):
    g = torch.Generator().manual_seed(seed)
    z = torch.rand(n, c, generator=g) * (hi - lo) + lo
    labels = torch.randint(0, c + 1, (n,), generator=g)  # c = background
    dense = (torch.rand(n, c, generator=g) < 0.2).float()
    return z, labels, dense


def one_hot_bg(labels, c):
    return F.one_hot(labels, c + 1)[:, :c].double()


@pytest.mark.parametrize('gp,gn,m', [(0, 4, 0.05), (1, 2, 0), (0, 0, 0), (2, 2, 0), (0, 0, 0.2), (1, 4, 0.3),
                                     (0.5, 0.5, 0.1)])
@pytest.mark.parametrize('mode', MODES)
def test_values_match_float64_formula(gp, gn, m, mode):
    z, labels, dense = random_case()
    for target, y in ((labels, one_hot_bg(labels, z.shape[1])), (dense, dense.double())):
        ours = asymmetric_loss(z, target, gamma_pos=gp, gamma_neg=gn, clip=m, focusing_grad=mode)
        ref = formula_float64(z, y, gp, gn, m)
        assert ours.dtype == torch.float32
        torch.testing.assert_close(ours.double(), ref, rtol=1e-6, atol=1e-12)


def test_value_in_float64_is_float64():
    z, labels, _ = random_case()
    ours = asymmetric_loss(z.double(), labels, gamma_pos=1, gamma_neg=3, clip=0.05)
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, formula_float64(z, one_hot_bg(labels, z.shape[1]), 1, 3, 0.05),
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize('gp,gn,m,alpha', [(0, 4, 0.05, None), (1, 2, 0, None), (1, 2, 0.1, 0.3),
                                           (0, 0, 0, None), (0.5, 1.5, 0.2, None)])
@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('kind', ['index', 'dense', 'soft'])
def test_gradcheck_float64(gp, gn, m, alpha, mode, kind):
    torch.manual_seed(0)
    n, c = 6, 5
    z = (torch.randn(n, c, dtype=torch.float64) * 3)
    # keep finite differences away from the kink p = m (tested on its own below) and the eps floor
    if m > 0:
        p = torch.sigmoid(z)
        z = torch.where((p - m).abs() < 1e-3, z + 0.1, z)
    z.requires_grad_(True)
    if kind == 'index':
        target = torch.randint(0, c + 1, (n,))
    elif kind == 'dense':
        target = (torch.rand(n, c) < 0.4).double()
    else:
        target = torch.rand(n, c, dtype=torch.float64)
    weight = torch.rand(n, c, dtype=torch.float64)

    def fn(x):
        return asymmetric_loss(x, target, weight, gamma_pos=gp, gamma_neg=gn, clip=m, alpha=alpha,
                               focusing_grad=mode)

    y = one_hot_bg(target, c) if kind == 'index' else target
    if mode == 'full':
        assert torch.autograd.gradcheck(fn, (z,), eps=1e-6, atol=1e-7)
    else:
        # 'detached' is the derivative with the focusing weights frozen at z: finite differences of
        # w(z) * CE(x) around x = z.
        assert_detached_grad_is_frozen_weight_derivative(fn, z, y, weight, gp, gn, m, alpha)
    # ... and equals autograd of the plain formula
    ours = torch.autograd.grad(fn(z).sum(), z)[0]
    ref = torch.autograd.grad((asymmetric_loss_reference(z, y, gp, gn, m, alpha=alpha, focusing_grad=mode)
                               * weight).sum(), z)[0]
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)


def assert_detached_grad_is_frozen_weight_derivative(fn, z, y, weight, gp, gn, m, alpha, h=1e-6):
    z0 = z.detach()
    p0 = torch.sigmoid(z0)
    w_pos, w_neg = (1 - p0) ** gp, torch.clamp(p0 - m, min=0) ** gn
    a_pos, a_neg = (1, 1) if alpha is None else (alpha, 1 - alpha)

    def frozen(x):
        p = torch.sigmoid(x)
        p_m = torch.clamp(p - m, min=0)
        return -(a_pos * y * w_pos * torch.log(p) + a_neg * (1 - y) * w_neg * torch.log(1 - p_m)) * weight

    numeric = torch.zeros_like(z0)
    for idx in range(z0.numel()):
        e = torch.zeros_like(z0).view(-1)
        e[idx] = h
        e = e.view_as(z0)
        numeric.view(-1)[idx] = (frozen(z0 + e).sum() - frozen(z0 - e).sum()) / (2 * h)
    analytic = torch.autograd.grad(fn(z).sum(), z)[0]
    torch.testing.assert_close(analytic, numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('gn', [1.0, 2.0, 4.0])
def test_gradcheck_at_the_kink(mode, gn):
    m = 0.05
    z_kink = torch.logit(torch.tensor(m, dtype=torch.float64))
    z = (z_kink + torch.tensor([[0.0, 1e-9, -1e-9, 0.5, -0.5]], dtype=torch.float64)).requires_grad_(True)
    target = torch.zeros(1, 5, dtype=torch.float64)

    def fn(x):
        return asymmetric_loss(x, target, gamma_pos=0, gamma_neg=gn, clip=m, focusing_grad=mode)

    if mode == 'full':
        assert torch.autograd.gradcheck(fn, (z,), eps=1e-7, atol=1e-8)
    else:
        assert_detached_grad_is_frozen_weight_derivative(fn, z, target, torch.ones_like(target), 0, gn, m, None,
                                                         h=1e-10)
    g = torch.autograd.grad(fn(z).sum(), z)[0]
    # below the margin: exactly nothing; at it (up to the rounding of p = m): nothing measurable
    assert g[0, 2] == 0 and abs(g[0, 0]) < 1e-15


def test_negatives_below_margin_are_hard_thresholded():
    m = 0.2
    z = torch.linspace(-10, 5, 401).view(-1, 1).requires_grad_(True)
    target = torch.zeros_like(z)
    for mode in MODES:
        loss = asymmetric_loss(z, target, gamma_pos=0, gamma_neg=0.0, clip=m, focusing_grad=mode)
        grad, = torch.autograd.grad(loss.sum(), z)
        below = torch.sigmoid(z.detach()) < m
        assert below.sum() > 10 and (~below).sum() > 10
        assert torch.all(loss.detach()[below] == 0) and torch.all(grad[below] == 0)
        assert torch.all(loss.detach()[~below] > 0) and torch.all(grad[~below] > 0)


def test_full_and_detached_differ_as_the_anchor_table_says():
    # With gamma- = 4, m = 0.05 the full gradient of a negative is (1 + gamma-) x the detached one as p -> m.
    z = torch.logit(torch.tensor([[0.0500001, 0.5, 0.9]], dtype=torch.float64)).requires_grad_(True)
    t = torch.zeros_like(z)
    full = torch.autograd.grad(asymmetric_loss(z, t, gamma_neg=4, clip=0.05).sum(), z)[0]
    det = torch.autograd.grad(asymmetric_loss(z, t, gamma_neg=4, clip=0.05, focusing_grad='detached').sum(), z)[0]
    ratio = (full / det)[0]
    assert abs(ratio[0].item() - 5.0) < 1e-3
    assert abs(ratio[1].item() - 3.92) < 0.01 and abs(ratio[2].item() - 2.34) < 0.01


def test_eq8_negative_gradient_closed_form():
    gn, m = 3.0, 0.1
    p = torch.tensor([[0.15, 0.4, 0.8, 0.99]], dtype=torch.float64)
    z = torch.logit(p).requires_grad_(True)
    g = torch.autograd.grad(asymmetric_loss(z, torch.zeros_like(z), gamma_neg=gn, clip=m).sum(), z)[0]
    p_m = p - m
    eq8 = p_m ** gn * (1 / (1 - p_m) - gn * torch.log(1 - p_m) / p_m) * p * (1 - p)
    torch.testing.assert_close(g, eq8, rtol=1e-10, atol=0)


def test_ce_special_case_equals_bce_with_logits():
    z, labels, dense = random_case(lo=-15, hi=15)
    z.requires_grad_(True)
    for target in (dense, torch.rand_like(dense)):  # hard and soft targets
        ours = asymmetric_loss(z, target, gamma_pos=0, gamma_neg=0, clip=0)
        ref = F.binary_cross_entropy_with_logits(z.double(), target.double(), reduction='none')
        torch.testing.assert_close(ours.double(), ref, rtol=1e-6, atol=1e-9)
        g_ours = torch.autograd.grad(ours.sum(), z)[0]
        g_ref = torch.autograd.grad(F.binary_cross_entropy_with_logits(z, target, reduction='sum'), z)[0]
        torch.testing.assert_close(g_ours, g_ref, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize('gamma', [2.0, 1.5])
def test_focal_special_case_equals_mmdet_focal_loss(gamma):
    from mmdet.models.losses import FocalLoss

    from mmdet_asl.models import AsymmetricLoss

    torch.manual_seed(1)
    n, c = 300, 80
    z = (torch.randn(n, c, dtype=torch.float64) * 4)
    labels = torch.randint(0, c + 1, (n,))
    labels[:100] = c  # plenty of background
    weight = torch.rand(n, dtype=torch.float64)
    focal = FocalLoss(use_sigmoid=True, gamma=gamma, alpha=0.25, loss_weight=2.0)
    ours = AsymmetricLoss(gamma_pos=gamma, gamma_neg=gamma, clip=0.0, alpha=0.25, loss_weight=2.0)
    for kwargs in (dict(), dict(weight=weight), dict(weight=weight, avg_factor=37.0),
                   dict(reduction_override='sum'), dict(reduction_override='none', weight=weight)):
        z1 = z.clone().requires_grad_(True)
        z2 = z.clone().requires_grad_(True)
        l1 = focal(z1, labels, **kwargs)
        l2 = ours(z2, labels, **kwargs)
        torch.testing.assert_close(l2, l1, rtol=1e-6, atol=1e-12)
        g1, = torch.autograd.grad(l1.sum(), z1)
        g2, = torch.autograd.grad(l2.sum(), z2)
        torch.testing.assert_close(g2, g1, rtol=1e-6, atol=1e-12)


def test_weights_avg_factor_and_loss_weight_behave_like_focal_loss():
    """Weight shapes (N,), (N, C), (N*C,), avg_factor, reduction_override and loss_weight: same as FocalLoss."""
    from mmdet.models.losses import FocalLoss

    from mmdet_asl.models import AsymmetricLoss

    torch.manual_seed(2)
    n, c = 50, 7
    z = torch.randn(n, c)
    labels = torch.randint(0, c + 1, (n,))
    dense = F.one_hot(labels, c + 1)[:, :c].float()
    weights = [None, torch.rand(n), torch.rand(n, c), torch.rand(n * c)]
    for reduction, loss_weight in itertools.product(('mean', 'sum', 'none'), (1.0, 0.5)):
        focal = FocalLoss(gamma=2.0, alpha=0.25, reduction=reduction, loss_weight=loss_weight)
        ours = AsymmetricLoss(gamma_pos=2.0, gamma_neg=2.0, clip=0.0, alpha=0.25, reduction=reduction,
                              loss_weight=loss_weight)
        # avg_factor arrives as a float or, from FCOS/ATSS (reduce_mean of num_pos), as a 0-dim tensor.
        for w, target, override, avg in itertools.product(weights, (labels, dense), (None, 'mean', 'sum', 'none'),
                                                          (None, 10.0, 0.0, torch.tensor(7.0))):
            red = override or reduction
            if red == 'sum' and avg is not None:
                with pytest.raises(ValueError):
                    focal(z, target, w, avg_factor=avg, reduction_override=override)
                with pytest.raises(ValueError, match='avg_factor'):
                    ours(z, target, w, avg_factor=avg, reduction_override=override)
                continue
            z_focal, z_ours = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
            expected = focal(z_focal, target, w, avg_factor=avg, reduction_override=override)
            got = ours(z_ours, target, w, avg_factor=avg, reduction_override=override)
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)
            # loss_weight / avg_factor are folded into the fused pass: the gradient must carry them too.
            expected.sum().backward()
            got.sum().backward()
            torch.testing.assert_close(z_ours.grad, z_focal.grad, rtol=1e-5, atol=1e-7)


def test_alpha_is_linear_weighting():
    z, labels, dense = random_case(lo=-5, hi=5)
    plain = asymmetric_loss(z, dense, gamma_pos=1, gamma_neg=2, clip=0.1)
    weighted = asymmetric_loss(z, dense, gamma_pos=1, gamma_neg=2, clip=0.1, alpha=0.7)
    torch.testing.assert_close(weighted, plain * torch.where(dense > 0, 0.7, 0.3))


def test_caller_no_grad_stays_in_force():
    z = torch.randn(4, 3, requires_grad=True)
    with torch.no_grad():
        loss = asymmetric_loss(z, torch.zeros(4, 3))
        assert not torch.is_grad_enabled()
        assert not loss.requires_grad
        asymmetric_loss(z, torch.zeros(4, 3), focusing_grad='detached')
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()


@pytest.mark.parametrize('clip', [0.0, 0.05])
@pytest.mark.parametrize('mode', MODES)
def test_tensor_gamma_neg_equals_float(clip, mode):
    """The adaptive controller passes gamma- as a 0-dim tensor: same loss and gradient as the float."""
    torch.manual_seed(3)
    z = torch.randn(50, 6, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 7, (50, ))
    dense = torch.rand(50, 6, dtype=torch.float64)
    for target in (labels, dense):
        a = asymmetric_loss(z, target, gamma_pos=1.0, gamma_neg=torch.tensor(2.5, dtype=torch.float64), clip=clip,
                            reduce=True, focusing_grad=mode)
        b = asymmetric_loss(z, target, gamma_pos=1.0, gamma_neg=2.5, clip=clip, reduce=True, focusing_grad=mode)
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(torch.autograd.grad(a, z)[0], torch.autograd.grad(b, z)[0])


def test_whole_number_gammas_are_products_that_match_pow():
    """The kernel raises to whole-number gammas by products; they must agree with pow to a few float32
    rounding steps, and other exponents (and tensor gammas) must go through pow itself."""
    from mmdet_asl.ops.asl.kernel import power

    x = torch.rand(10_000, dtype=torch.float32) * 0.99 + 0.01
    for gamma in (0.0, 1.0, 2.0, 3.0, 4.0, 7.0, 8.0):
        torch.testing.assert_close(power(x, gamma).double(), x.double() ** gamma, rtol=(gamma + 1) * 1.2e-7, atol=0)
    assert torch.equal(power(x, 0.0), torch.ones_like(x))
    assert torch.equal(power(x, 2.5), torch.pow(x, 2.5))
    assert torch.equal(power(x, torch.tensor(3.0)), torch.pow(x, torch.tensor(3.0)))


def test_no_floor_stays_finite_with_an_adaptive_margin_of_zero():
    """eps = 0 (no floor) with an adaptive m (a tensor) that reached 0: float32 rounds p_m to 1 for a very wrong
    negative, and log(1 - p_m) must stay finite rather than become -inf (NaN gradient)."""
    from mmdet_asl.ops.asl.function import apply_asymmetric_loss
    from mmdet_asl.ops.asl.params import ASLParams
    z = torch.tensor([[30.0, -30.0, 2.0]], requires_grad=True)
    target = torch.tensor([[0.0, 1.0, 0.0]])
    for clip in (torch.tensor(0.0), torch.zeros(3)):
        z.grad = None
        loss = apply_asymmetric_loss(z, target, params=ASLParams(1.0, 2.0, 0.0, 0.0), clip=clip, reduce=True)
        loss.backward()
        assert torch.isfinite(loss) and bool(torch.isfinite(z.grad).all())
        assert float(z.grad[0, 1]) < -0.9  # the far-wrong positive keeps its full gradient (no floor)


@pytest.mark.parametrize('alpha', [0.0, 1.0])
def test_alpha_at_its_bounds(alpha):
    """alpha in [0, 1] both ends included: 0 keeps only the negatives' term, 1 only the positives'."""
    z, labels, dense = random_case(lo=-5, hi=5)
    for target, y in ((labels, one_hot_bg(labels, z.shape[1])), (dense, dense.double())):
        ours = asymmetric_loss(z.double(), target, gamma_pos=1, gamma_neg=2, clip=0.1, alpha=alpha)
        torch.testing.assert_close(ours, formula_float64(z, y, 1, 2, 0.1, alpha=alpha), rtol=1e-12, atol=1e-14)
        assert bool((ours[(y > 0) if alpha == 0 else (y == 0)] == 0).all())
