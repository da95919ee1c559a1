"""The fused asymmetric quality focal loss (ops/asl/quality.py, the mmdet_asl::quality_focal_loss operator) against
its specification, ``quality_asymmetric_loss_reference``, differentiated by autograd: values and gradients in
float64 over gammas, margins and qualities, logits up to |z| = 800, both code paths of the kernel (the eager one
that gathers the positive slots, and the dense one that torch.compile fuses), half precision, and the choice of
``impl`` in ``AsymmetricQualityFocalLoss``. Two configurations are compiled for real."""
import math

import pytest
import torch
from torch._dynamo.exc import BackendCompilerFailed

from mmdet_asl.models import AsymmetricQualityFocalLoss
from mmdet_asl.models.losses import asymmetric_quality_focal_loss as aqfl_module
from mmdet_asl.ops.asl import function as asl_function
from mmdet_asl.ops.asl.function import apply_quality_focal_loss
from mmdet_asl.ops.asl.kernel import KernelOutputs
from mmdet_asl.ops.asl.params import ASLParams
from mmdet_asl.ops.asl.quality import quality_loss_and_grad
from mmdet_asl.ops.asl.reference import quality_asymmetric_loss_reference

F64 = dict(dtype=torch.float64)
GAMMAS = [0.0, 0.5, 1.0, 2.0, 4.0]
# The specification's float64 rounding: torch's BCE with logits loses the value 1e-18 of log(1 + e^-40) (it
# computes 0), and its sigmoid rounds to 1 at z = 40 (a zero gradient where the kernel gives 1e-17): absolute
# differences below 1e-14 on terms of order 1.
TOL = dict(rtol=1e-9, atol=1e-14)


def inputs(seed=0, n=120, c=7):
    """float64 logits (random, and rows of large |z|), qualities in {0, 0.3, 1} on a random positive mask."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, c, generator=g, **F64) * 5
    z[:3] = torch.tensor([-800.0, -40.0, -15.0, 0.0, 15.0, 40.0, 800.0], **F64)[:c]
    positive = torch.rand(n, c, generator=g) < 0.4
    positive[0], positive[1], positive[2] = True, False, True
    levels = torch.tensor([0.0, 0.3, 1.0], **F64)
    quality = torch.where(positive, levels[torch.randint(0, 3, (n, c), generator=g)], 0.0)
    return z, quality, positive


def reference(z, quality, positive, gp, gn, m, weight=None):
    """Value and gradient of the specification (autograd), weighted by ``weight``."""
    z = z.detach().clone().requires_grad_()
    loss = quality_asymmetric_loss_reference(z, quality, positive, gp, gn, m)
    loss = loss if weight is None else loss * weight
    grad, = torch.autograd.grad(loss.sum(), z)
    return loss.detach(), grad


def kernel(z, quality, positive, gp, gn, m, reduce=False, weight=None, scale=None):
    return quality_loss_and_grad(z, quality, positive, weight, scale, ASLParams(gp, gn, m, 0.0, None, 'full'),
                                 KernelOutputs(reduce, True, False))


@pytest.fixture(params=['gathered', 'dense'])
def branch(request, monkeypatch):
    """'dense' runs, eagerly, the code torch.compile traces (both terms on every slot, one shared exponential)."""
    if request.param == 'dense':
        monkeypatch.setattr(torch.compiler, 'is_compiling', lambda: True)
    return request.param


@pytest.mark.parametrize('clip', [0.0, 0.05])
@pytest.mark.parametrize('gamma_neg', GAMMAS)
def test_kernel_equals_specification(branch, gamma_neg, clip):
    z, quality, positive = inputs()
    for gamma_pos in GAMMAS:
        loss, grad = kernel(z, quality, positive, gamma_pos, gamma_neg, clip)
        ref_loss, ref_grad = reference(z, quality, positive, gamma_pos, gamma_neg, clip)
        assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
        torch.testing.assert_close(loss, ref_loss, **TOL)
        torch.testing.assert_close(grad, ref_grad, **TOL)


def test_kernel_weight_scale_and_sum(branch):
    """Weights (per row and per slot) and scale multiply loss and gradient; the sum is the weighted sum."""
    z, quality, positive = inputs(1)
    g = torch.Generator().manual_seed(2)
    for weight in (torch.rand(z.shape[0], 1, generator=g, **F64), torch.rand(*z.shape, generator=g, **F64)):
        ref_loss, ref_grad = reference(z, quality, positive, 2.0, 4.0, 0.05, weight)
        loss, grad = kernel(z, quality, positive, 2.0, 4.0, 0.05, weight=weight, scale=0.25)
        torch.testing.assert_close(loss, ref_loss * 0.25, **TOL)
        torch.testing.assert_close(grad, ref_grad * 0.25, **TOL)
        total, grad = kernel(z, quality, positive, 2.0, 4.0, 0.05, reduce=True, weight=weight,
                             scale=torch.tensor(0.5, **F64))
        torch.testing.assert_close(total, ref_loss.sum() * 0.5, rtol=1e-12, atol=0)
        torch.testing.assert_close(grad, ref_grad * 0.5, **TOL)


def test_kernel_reads_strided_logits():
    """The eager kernel scatters the positive slots by (row, column): logits that are a transposed view give the
    values of their contiguous copy."""
    z, quality, positive = inputs(3)
    strided = z.t().contiguous().t()
    assert not strided.is_contiguous()
    for got, expected in zip(kernel(strided, quality, positive, 1.0, 2.0, 0.0),
                             kernel(z, quality, positive, 1.0, 2.0, 0.0)):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision_is_finite(dtype):
    """Half inputs are computed in float32; the gradient comes back in their dtype, finite, also for logits of
    +-1e4 and a scale that overflows half precision (saturated)."""
    z, quality, positive = inputs(4)
    z = z.clamp(-1e4, 1e4)
    z[1] = torch.tensor([-1e4, 1e4, -60.0, 60.0, 0.0, 3.0, -3.0], **F64)
    pred = z.to(dtype).requires_grad_()
    loss = apply_quality_focal_loss(pred, quality, positive, gamma_pos=2.0, gamma_neg=4.0, clip=0.05)
    loss.sum().backward()
    assert loss.dtype == torch.float32 and pred.grad.dtype == dtype
    assert torch.isfinite(loss).all() and torch.isfinite(pred.grad).all()
    ref_loss, ref_grad = reference(pred.detach().double(), quality, positive, 2.0, 4.0, 0.05)
    torch.testing.assert_close(loss.double(), ref_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(pred.grad.double(), ref_grad, rtol=1e-2, atol=1e-3)
    pred.grad = None
    apply_quality_focal_loss(pred, quality, positive, reduce=True, scale=1e9).backward()
    assert torch.isfinite(pred.grad).all()
    if dtype == torch.float16:   # 1e9 times a gradient of order 1 is past half's largest value, 65504
        assert pred.grad.abs().max() == torch.finfo(dtype).max


def test_operator_element_wise_and_reduced_against_specification():
    z, quality, positive = inputs(5)
    weight = torch.rand(z.shape[0], 1, generator=torch.Generator().manual_seed(6), **F64)
    ref_loss, ref_grad = reference(z, quality, positive, 0.5, 2.0, 0.05, weight)
    pred = z.clone().requires_grad_()
    loss = apply_quality_focal_loss(pred, quality, positive, weight, gamma_pos=0.5, gamma_neg=2.0, clip=0.05)
    grad, = torch.autograd.grad(loss, pred, torch.full_like(loss, 3.0))
    torch.testing.assert_close(loss, ref_loss, **TOL)
    torch.testing.assert_close(grad, 3 * ref_grad, **TOL)
    total = apply_quality_focal_loss(pred, quality, positive, weight, gamma_pos=0.5, gamma_neg=2.0, clip=0.05,
                                     reduce=True, scale=0.5)
    grad, = torch.autograd.grad(total, pred)
    torch.testing.assert_close(total, ref_loss.sum() * 0.5, rtol=1e-12, atol=0)
    torch.testing.assert_close(grad, 0.5 * ref_grad, **TOL)
    expected = reference(z, quality, positive, 0.5, 2.0, 0.05)[0]
    with torch.no_grad():   # no gradient asked for: the kernel computes none
        loss = apply_quality_focal_loss(pred, quality, positive, gamma_pos=0.5, gamma_neg=2.0, clip=0.05)
    assert not loss.requires_grad
    torch.testing.assert_close(loss, expected, **TOL)


@pytest.mark.parametrize('args,match', [
    (dict(impl='fused'), 'impl must be one of'),
    (dict(quality=torch.zeros(3, 2)), 'quality must be a tensor of the shape'),
    (dict(positive=torch.zeros(4, 3)), 'positive must be a bool mask'),
    (dict(weight=torch.ones(4)), 'weight must be'),
    (dict(logits=torch.zeros(4)), 'logits must be an \\(N, C\\)'),
])
def test_operator_errors_name_the_argument(args, match):
    call = dict(logits=torch.zeros(4, 3), quality=torch.zeros(4, 3), positive=torch.zeros(4, 3, dtype=torch.bool))
    call.update(args)
    logits, quality, positive = call.pop('logits'), call.pop('quality'), call.pop('positive')
    with pytest.raises((ValueError, TypeError), match=match):
        apply_quality_focal_loss(logits, quality, positive, **call)


# ------------------------------------------------------------------------------ compiled (two configurations)
def test_compiled_kernel_equals_specification():
    """The compiled kernel, element-wise with gradient, in float64 (gamma+ = 2, gamma- = 4, m = 0.05)."""
    z, quality, positive = inputs(7)
    pred = z.clone().requires_grad_()
    loss = apply_quality_focal_loss(pred, quality, positive, gamma_pos=2.0, gamma_neg=4.0, clip=0.05, impl='compiled')
    grad, = torch.autograd.grad(loss.sum(), pred)
    assert asl_function._compiler_failure is None
    ref_loss, ref_grad = reference(z, quality, positive, 2.0, 4.0, 0.05)
    torch.testing.assert_close(loss, ref_loss, **TOL)
    torch.testing.assert_close(grad, ref_grad, **TOL)


def test_compiled_loss_module_equals_reference_impl():
    """The loss module with impl='compiled' (summed in the pass, loss_weight / avg_factor folded in), float32
    tuple targets as a GFL head passes them, two batch sizes, against impl='reference' in float64 (the float32
    reference is the less accurate of the two: its gradient is off by 7e-8 where the kernel's is off by 1e-8)."""
    kwargs = dict(gamma_pos=2.0, gamma_neg=4.0, clip=0.05, loss_weight=1.5)
    compiled = AsymmetricQualityFocalLoss(impl='compiled', **kwargs)
    plain = AsymmetricQualityFocalLoss(impl='reference', **kwargs)
    g = torch.Generator().manual_seed(8)
    for n in (300, 257):
        z = torch.randn(n, 5, generator=g) * 4
        labels, score = torch.randint(0, 6, (n, ), generator=g), torch.rand(n, generator=g)
        weight, avg = torch.rand(n, generator=g), 37.0
        results = []
        for loss, dtype in ((compiled, torch.float32), (plain, torch.float64)):
            pred = z.to(dtype, copy=True).requires_grad_()
            value = loss(pred, (labels, score.to(dtype)), weight=weight.to(dtype), avg_factor=avg)
            value.backward()
            assert value.dtype == dtype and pred.grad.dtype == dtype
            results.append((value.detach().double(), pred.grad.double()))
        torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-6, atol=0)
        torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-5, atol=3e-8)
    assert asl_function._compiler_failure is None


def test_compiler_failure_runs_the_eager_kernel(monkeypatch):
    def broken_compile(fn, **kwargs):
        def run(*args):
            raise BackendCompilerFailed(lambda *a: None, RuntimeError('no C++ compiler here'), None)
        return run

    monkeypatch.setattr(asl_function, '_compiled', {})
    monkeypatch.setattr(asl_function, '_compiler_failure', None)
    # MMDET_ASL_COMPILE=0 in the environment would route impl='compiled' to the eager kernel before any compile
    monkeypatch.setattr(asl_function, 'IMPL_OVERRIDE', None)
    monkeypatch.setattr(torch, 'compile', broken_compile)
    z, quality, positive = inputs(9)
    with pytest.warns(UserWarning, match='torch.compile failed'):
        loss = apply_quality_focal_loss(z, quality, positive, impl='compiled')
    torch.testing.assert_close(loss, reference(z, quality, positive, 2.0, 2.0, 0.0)[0], **TOL)


# ------------------------------------------------------------------------------ impl in the loss module
def test_impl_default_and_refusal():
    assert AsymmetricQualityFocalLoss().impl == 'eager'
    assert "impl='reference'" in repr(AsymmetricQualityFocalLoss(impl='reference'))
    with pytest.raises(ValueError, match="impl must be one of \\('eager', 'compiled', 'reference'\\)"):
        AsymmetricQualityFocalLoss(impl='fused')


def forbid_fused(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError('the fused kernel was called')
    monkeypatch.setattr(aqfl_module, 'apply_quality_focal_loss', fail)


@pytest.mark.parametrize('reduction', ['mean', 'sum', 'none'])
def test_eager_module_equals_reference_impl(reduction):
    g = torch.Generator().manual_seed(10)
    z = torch.randn(40, 6, generator=g, **F64) * 6
    dense = torch.rand(40, 6, generator=g, **F64) * (torch.rand(40, 6, generator=g) < 0.3)
    weight = torch.rand(40, generator=g, **F64)
    results = []
    for impl in ('eager', 'reference'):
        loss = AsymmetricQualityFocalLoss(gamma_pos=1.0, gamma_neg=3.0, clip=0.05, loss_weight=2.0, impl=impl,
                                          reduction=reduction)
        for avg in ((None, 7.5) if reduction == 'mean' else (None, )):
            pred = z.clone().requires_grad_()
            value = loss(pred, dense, weight=weight, avg_factor=avg)
            grad, = torch.autograd.grad(value.sum(), pred)
            results.append((value.detach(), grad))
    half = len(results) // 2
    for got, expected in zip(results[:half], results[half:]):
        torch.testing.assert_close(got[0], expected[0], rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(got[1], expected[1], rtol=1e-12, atol=1e-14)


def test_reference_paths(monkeypatch):
    """impl='reference', probabilities (activated=True), qualities that require a gradient and empty batches
    take the specification; the environment's override does not replace 'reference'."""
    monkeypatch.setattr(aqfl_module, 'IMPL_OVERRIDE', 'eager')
    g = torch.Generator().manual_seed(11)
    z = torch.randn(12, 4, generator=g, **F64)
    target = (torch.randint(0, 5, (12, ), generator=g), torch.rand(12, generator=g, **F64))
    fused = AsymmetricQualityFocalLoss(gamma_neg=4.0, clip=0.05)
    expected = fused(z, target)
    forbid_fused(monkeypatch)
    torch.testing.assert_close(AsymmetricQualityFocalLoss(gamma_neg=4.0, clip=0.05, impl='reference')(z, target),
                               expected, rtol=1e-12, atol=0)
    AsymmetricQualityFocalLoss(activated=True, impl='compiled')(torch.sigmoid(z), target)
    score = target[1].clone().requires_grad_()
    AsymmetricQualityFocalLoss()(z, (target[0], score)).backward()
    assert score.grad is not None and score.grad.abs().sum() > 0
    empty = AsymmetricQualityFocalLoss(reduction='sum')(z[:0], (target[0][:0], target[1][:0]))
    assert empty.item() == 0


def test_environment_override_selects_the_fused_kernel(monkeypatch):
    """MMDET_ASL_COMPILE=0 (read at import) makes impl='compiled' run the eager kernel: nothing is compiled."""
    monkeypatch.setattr(aqfl_module, 'IMPL_OVERRIDE', 'eager')
    monkeypatch.setattr(asl_function, 'IMPL_OVERRIDE', 'eager')

    def no_compile(*args, **kwargs):
        raise AssertionError('compiled')
    monkeypatch.setattr(asl_function, '_compiled_kernel', no_compile)
    z, quality, positive = inputs(12)
    loss = AsymmetricQualityFocalLoss(impl='compiled', reduction='sum')
    torch.testing.assert_close(loss(z, quality), reference(z, quality, quality != 0, 2.0, 2.0, 0.0)[0].sum(),
                               rtol=1e-12, atol=0)



def test_saturated_positive_keeps_its_relative_accuracy(branch):
    """q = 1 and p near 1: |q - p| = 1 - p is taken from 1 - p itself, not from q - p (which cancels to
    relative errors of 1e-7 at z = 20 and 1e-3 at z = 30 in float64): the value and gradient of
    -(1 - p)^2 log p, by hand with math.log1p/math.exp, to float64 rounding."""
    z = torch.tensor([[20.0, 30.0, 36.0]], **F64)
    loss, grad = kernel(z, torch.ones_like(z), torch.ones_like(z, dtype=torch.bool), 2.0, 4.0, 0.0)
    for j, x in enumerate(z[0].tolist()):
        q = math.exp(-x) / (1 + math.exp(-x))   # 1 - p
        log_p = -math.log1p(math.exp(-x))
        # d/dz [-(1 - p)^2 log p] = -(1 - p)^2 (1 - p) + 2 (1 - p) p (1 - p) log p
        assert loss[0, j].item() == pytest.approx(-q * q * log_p, rel=1e-13, abs=0)
        assert grad[0, j].item() == pytest.approx(-q**3 + 2 * q * q * (1 - q) * log_p, rel=1e-12, abs=0)


@pytest.mark.parametrize('bad', [float('inf'), -float('inf'), float('nan')])
def test_validation_counts_each_non_finite_logit(bad):
    """The check reads pred's minimum and maximum (one pass): a single inf, -inf or NaN is found and counted."""
    z = torch.randn(6, 3)
    z[4, 1] = bad
    with pytest.raises(ValueError, match='pred contains 1 non-finite value\\(s\\) \\(NaN or inf\\) out of 18'):
        AsymmetricQualityFocalLoss()(z, (torch.tensor([0, 1, 2, 3, 3, 0]), torch.rand(6)))


def test_validation_reads_the_qualities_of_foreground_anchors():
    """Tuple targets: the score of a foreground anchor outside [0, 1] is refused; a background anchor's score is
    not a quality (QualityFocalLoss never reads it)."""
    labels, score = torch.tensor([0, 3, 1]), torch.tensor([0.5, 7.0, 0.2])
    AsymmetricQualityFocalLoss()(torch.randn(3, 3), (labels, score))
    with pytest.raises(ValueError, match='target qualities must be in \\[0, 1\\], got min 0.2.*, max 1.5'):
        AsymmetricQualityFocalLoss()(torch.randn(3, 3), (labels, torch.tensor([1.5, 7.0, 0.2])))
