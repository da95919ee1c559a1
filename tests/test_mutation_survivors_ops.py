"""Behaviours of ``mmdet_asl.ops.asl`` that mutants of it showed unchecked.

Argument checks (``checks.py``): the exact text of each refusal (the interval's open and closed ends, the
argument's name, the offending type), every branch of the layout and value checks, and the numbers they
return. The operator (``function.py``): the compiled path through a stand-in ``torch.compile`` (one compile per
configuration, a float scale as a tensor input, the warning after a compiler failure), the scaled backward,
empty and one-element batches, every refusal. The kernel (``kernel.py``): float64 probe sums and positive
slots. The quality focal loss (``quality.py``): weights without a gradient, the sum's dtype, the gradient
where q = p, the fused form run eagerly. Single-label ASL (``single_label.py``): defaults, dtypes, the
unfloored log-softmax, every refusal. The specification (``reference.py``): its default hyper-parameters,
0 ** gamma, dense targets, the probability gap of fractional counts, float64 probe sums. Each expected message
or value is written by hand from the input the test builds, or computed with Python's float64 ``math``.
"""
import math

import pytest
import torch
from torch._dynamo.exc import Unsupported

from mmdet_asl.ops.asl import function as asl_function
from mmdet_asl.ops.asl.checks import (
    check_avg_factor,
    check_gamma_neg,
    check_layout,
    check_loss_params,
    check_options,
    check_params,
    check_real,
    check_values,
)
from mmdet_asl.ops.asl.function import apply_asymmetric_loss, apply_quality_focal_loss, asymmetric_loss
from mmdet_asl.ops.asl.kernel import KernelOutputs
from mmdet_asl.ops.asl.params import ASLParams, ExecOptions
from mmdet_asl.ops.asl.quality import quality_loss_and_grad
from mmdet_asl.ops.asl.reference import (
    asymmetric_loss_reference,
    dense_target,
    focusing_weight,
    probability_gap,
    probe_sums_reference,
    quality_asymmetric_loss_reference,
    varifocal_asymmetric_loss_reference,
)
from mmdet_asl.ops.asl.single_label import asymmetric_loss_single_label

F64 = torch.float64


def refused(exc, message, fn, *args, **kwargs):
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    text = info.value.args[0] if info.value.args else None
    assert text == message, text


# -------------------------------------------------------------------------------------- checks.py
def test_check_real_intervals():
    assert check_real('x', 0.5, 0.0, 1.0, low_open=True, high_open=True) == 0.5
    refused(ValueError, 'x must be in (0.0, inf], got 0.0', check_real, 'x', 0, low=0.0, low_open=True)
    refused(ValueError, 'x must be in [0.0, 1.0), got 1.0', check_real, 'x', 1, 0.0, 1.0, high_open=True)
    refused(ValueError, 'x must be in [-1.0, 1.0], got 2.0', check_real, 'x', 2, -1.0, 1.0)
    refused(TypeError, "x must be a real number, got str ('a')", check_real, 'x', 'a')


@pytest.mark.parametrize('params,exc,message', [
    (ASLParams(gamma_pos=-1), ValueError, 'gamma_pos must be in [0.0, inf], got -1.0'),
    (ASLParams(gamma_neg=-2), ValueError, 'gamma_neg must be in [0.0, inf], got -2.0'),
    (ASLParams(clip=1.0), ValueError, 'clip (the probability margin m) must be in [0.0, 1.0), got 1.0'),
    (ASLParams(clip=True), TypeError, 'clip (the probability margin m) must be a real number, got True'),
    (ASLParams(eps=-0.5), ValueError, 'eps must be in [0.0, 1.0), got -0.5'),
    (ASLParams(alpha=2), ValueError, 'alpha must be in [0.0, 1.0], got 2.0'),
    (ASLParams(gamma_neg=torch.ones(2, 2)), TypeError,
     'gamma_neg as a tensor must be a floating 0-dim or (C,) tensor, got torch.float32 of shape (2, 2)'),
    (ASLParams(gamma_neg=torch.tensor(2)), TypeError,
     'gamma_neg as a tensor must be a floating 0-dim or (C,) tensor, got torch.int64 of shape ()'),
])
def test_check_params_messages(params, exc, message):
    refused(exc, message, check_params, params)


def test_check_params_returns_floats():
    params = check_params(ASLParams(1, 2, 0, 0, 1, 'detached'))
    assert params == (1.0, 2.0, 0.0, 0.0, 1.0, 'detached')
    assert all(type(v) is float for v in params[:5])
    gamma = torch.tensor([1.0, 2.0])
    assert check_params(ASLParams(gamma_neg=gamma)).gamma_neg is gamma


def test_check_loss_params():
    params = check_loss_params(1, 2, 0.1, 0.01, 0.25, 'detached')
    assert params == ASLParams(1.0, 2.0, 0.1, 0.01, 0.25, 'detached') and type(params.gamma_neg) is float
    assert check_loss_params(0, 4, 0.05, 0) == ASLParams(0.0, 4.0, 0.05, 0.0, None, 'full')


def test_other_argument_messages():
    refused(TypeError, "validate must be True or False, got str ('no')", check_options, ExecOptions('eager', 'no'))
    refused(ValueError, 'avg_factor must be in [0.0, inf], got -1.0', check_avg_factor, -1)
    refused(ValueError, 'gamma_neg must be in [0.0, inf], got -1.0', check_gamma_neg, -1)


# ------------------------------------------------------------------------------------------ layout
Z = torch.zeros(2, 3)


def test_layout_messages():
    refused(TypeError, 'pred (logits) and target must be torch.Tensor, got list and Tensor', check_layout,
            [[0.0]], torch.zeros(1))
    refused(TypeError, 'pred (logits) and target must be torch.Tensor, got Tensor and list', check_layout, Z, [0, 1])
    refused(ValueError, 'pred (logits) has C = 0 classes', check_layout, torch.zeros(2, 0), torch.zeros(2, 0))
    refused(TypeError, 'target (class indices) must be an integer tensor, got torch.bool', check_layout, Z,
            torch.tensor([True, False]))
    refused(ValueError, 'target must be (N,) integer class indices or (N, C) dense targets matching pred (2, 3), '
            'got (2,) of torch.float32', check_layout, Z, torch.zeros(2))
    refused(TypeError, 'weight must be a torch.Tensor or None, got list', check_layout, Z, torch.zeros(2, 3),
            [1.0, 1.0])
    refused(ValueError, 'weight must have shape (2,), (2, 3) or (6,) for pred (2, 3), got (2, 5)', check_layout, Z,
            torch.zeros(2, 3), torch.ones(2, 5))


def test_layout_of_integer_dense_targets_and_row_weights():
    """An (N, C) integer target is dense (0/1), not class indices; an (N, 1) weight is a weight per row."""
    target, weight, is_index = check_layout(Z, torch.ones(2, 3, dtype=torch.int64), torch.ones(2, 1))
    assert not is_index and target.dtype == torch.int64 and tuple(weight.shape) == (2, 1)


# ------------------------------------------------------------------------------------------ values
def test_values_of_an_empty_batch_pass():
    check_values(torch.zeros(0, 3), torch.zeros(0, dtype=torch.int64), None, None, True)
    check_values(torch.zeros(0, 3), torch.zeros(0, 3), torch.zeros(0, 3), None, False)


def test_values_of_a_single_element():
    refused(ValueError, 'target (class indices) must be in [0, 1] (1 = background), got 1 out of range, e.g. 5',
            check_values, torch.zeros(1, 1), torch.tensor([5]), None, None, True)
    refused(ValueError, 'pred (logits) contains 1 non-finite value(s) (NaN or inf) out of 1', check_values,
            torch.full((1, 1), math.inf), torch.tensor([0]), None, None, True)


def test_values_name_the_labels_out_of_range():
    """Labels 0 and C (background) are valid; only 5 is out of range for C = 3."""
    refused(ValueError, 'target (class indices) must be in [0, 3] (3 = background), got 1 out of range, e.g. 5',
            check_values, torch.zeros(3, 3), torch.tensor([0, 5, 3]), None, None, True)


def test_values_refuse_a_negative_scale():
    refused(ValueError, 'avg_factor must be finite and >= 0 (the loss is scaled by loss_weight / avg_factor), got a '
            'scale of -1.0', check_values, Z, torch.zeros(2, 3), None, torch.tensor(-1.0), False)


# ---------------------------------------------------------------------------------------- reference.py
def sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


def test_reference_defaults():
    """ASL's defaults gamma+ = 0, gamma- = 4, m = 0.05, eps = 0: a positive at z = 0 costs log 2, a negative at
    z = 2 costs -p_m^4 log(1 - p_m) with p_m = sigmoid(2) - 0.05."""
    p_m = sigmoid(2.0) - 0.05
    loss = asymmetric_loss_reference(torch.tensor([[0.0, 2.0]], dtype=F64), torch.tensor([[1.0, 0.0]], dtype=F64))
    assert loss.tolist()[0] == pytest.approx([math.log(2.0), -p_m**4 * math.log(1.0 - p_m)], rel=1e-14)


def test_quality_reference_defaults():
    """gamma+ = gamma- = 2, m = 0: the positive of quality 0.5 at z = 1 costs |0.5 - p|^2 BCE(p, 0.5), the
    negative at z = 1 costs p^2 (-log(1 - p))."""
    p = sigmoid(1.0)
    bce = -(0.5 * math.log(p) + 0.5 * math.log(1.0 - p))
    z = torch.tensor([[1.0, 1.0]], dtype=F64)
    loss = quality_asymmetric_loss_reference(z, torch.tensor([[0.5, 0.0]], dtype=F64), torch.tensor([[True, False]]))
    assert loss.tolist()[0] == pytest.approx([(p - 0.5)**2 * bce, -p**2 * math.log(1.0 - p)], rel=1e-14)


def test_varifocal_reference_defaults():
    """alpha = 0.75, gamma- = 2, m = 0, IoU-weighted: the positive of IoU 0.5 at z = 1 costs 0.5 BCE(p, 0.5), the
    negative at z = 1 costs 0.75 p^2 (-log(1 - p))."""
    p = sigmoid(1.0)
    bce = -(0.5 * math.log(p) + 0.5 * math.log(1.0 - p))
    loss = varifocal_asymmetric_loss_reference(torch.tensor([[1.0, 1.0]], dtype=F64), torch.tensor([[0.5, 0.0]]))
    assert loss.tolist()[0] == pytest.approx([0.5 * bce, -0.75 * p**2 * math.log(1.0 - p)], rel=1e-14)


def test_varifocal_reference_large_logit():
    """m = 0: the negative's cross-entropy is BCE with logits, finite where p rounds to 1 (z = 40: softplus(40)
    = 40 to double precision), so the loss is 0.75 * 1 * 40."""
    loss = varifocal_asymmetric_loss_reference(torch.tensor([[40.0]], dtype=F64), torch.tensor([[0.0]]))
    assert float(loss) == pytest.approx(0.75 * 40.0, rel=1e-15)


def test_dense_target():
    dense = dense_target(torch.tensor([[0, 1], [1, 1]]), 2)
    assert dense.dtype == F64 and dense.tolist() == [[0.0, 1.0], [1.0, 1.0]]
    assert dense_target(torch.tensor([[0.25, 1.0]]), 2).dtype == F64
    assert dense_target(torch.tensor([1, 2]), 2).tolist() == [[0.0, 1.0], [0.0, 0.0]]  # 2 = background


@pytest.mark.parametrize('gamma,expected', [(0.0, [1.0, 1.0]), (1.0, [0.0, 0.5]), (2.0, [0.0, 0.25])])
def test_focusing_weight_at_zero(gamma, expected):
    """0 ** 0 = 1 (no focusing), 0 ** gamma = 0 otherwise."""
    assert focusing_weight(torch.tensor([0.0, 0.5], dtype=F64), gamma).tolist() == expected


def test_probability_gap_of_sums():
    assert probability_gap(torch.tensor([1.5, 2.0, 0.6, 1.0])) == pytest.approx((0.75, 0.6, 0.15), abs=1e-7)
    # half a slot on each side (soft targets): 0.25 / 0.5 and 0.2 / 0.5
    assert probability_gap([0.25, 0.5, 0.2, 0.5]) == pytest.approx((0.5, 0.4, 0.1), abs=1e-15)
    pt_pos, pt_neg, gap = probability_gap([0.0, 0.0, 0.6, 1.0])
    assert math.isnan(pt_pos) and pt_neg == 0.6 and math.isnan(gap)
    pt_pos, pt_neg, gap = probability_gap([1.0, 2.0, 0.0, 0.0])
    assert pt_pos == 0.5 and math.isnan(pt_neg) and math.isnan(gap)


def test_probe_sums_reference_in_float64():
    """float32 logits are summed as float64 probabilities: sigmoid(1) and 1 - sigmoid(-2) to double precision."""
    sums = probe_sums_reference(torch.tensor([[1.0, -2.0]]), torch.tensor([[1.0, 0.0]]))
    assert sums.dtype == F64
    assert sums.tolist() == pytest.approx([sigmoid(1.0), 1.0, 1.0 - sigmoid(-2.0), 1.0], rel=1e-15, abs=0)


# ------------------------------------------------------------------------------------------ quality.py
def quality_inputs():
    z = torch.tensor([[0.0, 1.0], [-1.0, 2.0]], dtype=F64)
    quality = torch.tensor([[0.5, 0.0], [0.25, 0.0]], dtype=F64)
    positive = torch.tensor([[True, False], [True, False]])
    return z, quality, positive


def test_quality_weighted_without_gradient():
    """A weighted loss under no_grad (no gradient asked for) equals the reference, weighted."""
    z, quality, positive = quality_inputs()
    weight = torch.tensor([[2.0], [3.0]], dtype=F64)
    with torch.no_grad():
        loss = apply_quality_focal_loss(z, quality, positive, weight)
    expected = quality_asymmetric_loss_reference(z, quality, positive) * weight
    torch.testing.assert_close(loss, expected, rtol=1e-13, atol=0)


def test_quality_sum_keeps_the_logits_dtype():
    z, quality, positive = quality_inputs()
    loss = apply_quality_focal_loss(z.float(), quality.float(), positive, reduce=True)
    assert loss.dtype == torch.float32


def test_quality_gradient_where_quality_equals_p():
    """z = 0 and q = 0.5: d = p - q = 0, the weight |d|^1.5 and its derivative vanish, so does the gradient
    (the BCE's own slope p - q is 0 too); at z = 1 with q = 0, d = p and the derivative is, by hand,
    p^1.5 p + 1.5 p^0.5 p (1 - p) (-log(1 - p))."""
    z = torch.tensor([[0.0, 1.0]], dtype=F64, requires_grad=True)
    quality = torch.tensor([[0.5, 0.0]], dtype=F64)
    positive = torch.tensor([[True, True]])
    apply_quality_focal_loss(z, quality, positive, gamma_pos=1.5, reduce=True).backward()
    p = sigmoid(1.0)
    assert z.grad.tolist()[0] == pytest.approx([0.0, p**2.5 + 1.5 * p**0.5 * p * (1 - p) * -math.log(1 - p)],
                                               rel=1e-13, abs=1e-300)


def test_quality_fused_form_without_gradient(monkeypatch):
    """The form the compiled kernel takes (both terms on every slot, selected by the mask), run eagerly:
    the loss of the reference and no gradient when none is asked for."""
    z, quality, positive = quality_inputs()
    monkeypatch.setattr(torch.compiler, 'is_compiling', lambda: True)
    params = ASLParams(2.0, 2.0, 0.0, 0.0, None, 'full')
    loss, grad = quality_loss_and_grad(z, quality, positive, None, None, params, KernelOutputs(False, False, False))
    monkeypatch.undo()
    assert grad is None
    torch.testing.assert_close(loss, quality_asymmetric_loss_reference(z, quality, positive), rtol=1e-13, atol=0)


# -------------------------------------------------------------------------------------- single_label.py
def single_label_by_hand(row, label, gamma_pos=0.0, gamma_neg=4.0, clip=0.0):
    """Appendix H's loss of one row in float64 ``math``: softmax, then Eq. 7's two terms."""
    exps = [math.exp(v - max(row)) for v in row]
    p = [e / sum(exps) for e in exps]
    loss = -(1 - p[label])**gamma_pos * math.log(p[label])
    for c, p_c in enumerate(p):
        if c != label:
            p_m = max(p_c - clip, 0.0)
            loss -= p_m**gamma_neg * math.log(1 - p_m)
    return loss


def test_single_label_defaults_and_labels_missing_the_last_class():
    """gamma+ = 0, gamma- = 4, m = 0 by default; labels that never name the last class still make (N, C)
    one-hot targets."""
    rows = [[0.0, 1.0, -1.0], [2.0, 0.5, 0.0]]
    loss = asymmetric_loss_single_label(torch.tensor(rows, dtype=F64), torch.tensor([0, 0]))
    assert loss.tolist() == pytest.approx([single_label_by_hand(r, 0) for r in rows], rel=1e-13)


def test_single_label_dtypes():
    labels = torch.tensor([1])
    assert asymmetric_loss_single_label(torch.zeros(1, 2, dtype=torch.float16), labels).dtype == torch.float32
    assert asymmetric_loss_single_label(torch.zeros(1, 2), labels).dtype == torch.float32
    assert asymmetric_loss_single_label(torch.zeros(1, 2, dtype=F64), labels).dtype == F64


def test_single_label_exact_log_softmax_without_eps():
    """eps = 0: log p_t is not floored, -200 stays -200 in float32; only log(1 - p_m) of the non-target class
    (p rounds to 1) is floored at the smallest normal float32."""
    loss = asymmetric_loss_single_label(torch.tensor([[0.0, 200.0]]), torch.tensor([0]))
    assert float(loss) == pytest.approx(200.0 - math.log(torch.finfo(torch.float32).tiny), rel=1e-6)


@pytest.mark.parametrize('logits,labels,message', [
    ([[0.0, 1.0]], torch.tensor([0]), 'logits must be a floating (N, C) tensor, got [[0.0, 1.0]]'),
    (torch.zeros(2, 3, dtype=torch.int64), torch.tensor([0, 1]),
     'logits must be a floating (N, C) tensor, got torch.Size([2, 3])'),
    (torch.zeros(3), torch.tensor([0, 1, 2]), 'logits must be a floating (N, C) tensor, got torch.Size([3])'),
    (torch.zeros(2, 3), [0, 1], 'labels must be integer class indices of shape (2,), got [0, 1]'),
    (torch.zeros(2, 3), torch.tensor([0, 1, 2]), 'labels must be integer class indices of shape (2,), got '
     'torch.Size([3])'),
    (torch.zeros(2, 3), torch.tensor([[0], [1]]), 'labels must be integer class indices of shape (2,), got '
     'torch.Size([2, 1])'),
    (torch.zeros(2, 3), torch.tensor([-1, 1]), 'labels must be in [0, 2], got min -1, max 1'),
    (torch.tensor([[0.0, math.nan, 1.0], [math.inf, 0.0, 0.0]]), torch.tensor([0, 1]),
     'logits contain 2 non-finite value(s)'),
])
def test_single_label_messages(logits, labels, message):
    refused(ValueError, message, asymmetric_loss_single_label, logits, labels)


def test_single_label_message_of_soft_targets():
    refused(TypeError, 'labels must be integer class indices (any integer dtype), got torch.float32; soft or one-hot '
            'targets are not single labels', asymmetric_loss_single_label, torch.zeros(2, 3), torch.zeros(2))


# ------------------------------------------------------------------------------------------- kernel.py
def test_per_class_probe_sums_of_dense_targets_are_float64():
    z = torch.tensor([[0.5, -1.0], [2.0, 0.0]])
    _, sums = apply_asymmetric_loss(z, torch.tensor([[1.0, 0.0], [0.0, 1.0]]), return_probe=True,
                                    probe_per_class=True)
    assert sums.dtype == F64
    p = [[sigmoid(0.5), sigmoid(-1.0)], [sigmoid(2.0), 0.5]]
    expected = [[p[0][0], 1.0, 1 - p[1][0], 1.0], [p[1][1], 1.0, 1 - p[0][1], 1.0]]
    assert sums.flatten().tolist() == pytest.approx([v for row in expected for v in row], rel=1e-7)


def test_positive_slots_of_index_labels_are_computed_in_float64():
    """For float32 logits the positive slot's term is computed in float64 and rounded once: it equals the float64
    specification rounded to float32, bit for bit."""
    z = torch.linspace(-6.0, 6.0, 241).reshape(-1, 1).repeat(1, 2)
    labels = torch.zeros(241, dtype=torch.int64)  # column 0 positive
    loss = apply_asymmetric_loss(z, labels, params=ASLParams(gamma_pos=1.0, gamma_neg=4.0, clip=0.05))
    dense = torch.zeros(241, 2, dtype=F64)
    dense[:, 0] = 1.0
    expected = asymmetric_loss_reference(z.double(), dense, gamma_pos=1.0, gamma_neg=4.0, clip=0.05)
    assert torch.equal(loss[:, 0], expected[:, 0].float())


# ----------------------------------------------------------------------------------------- function.py
@pytest.fixture
def fake_compiler(monkeypatch):
    """impl='compiled' reaches ``torch.compile`` (the environment's override off), which records each call
    and returns the function it was given, run eagerly; each call's arguments are recorded too."""
    compiled = []

    def compile(fn, **kwargs):
        def run(*args):
            compiled[-1]['calls'].append(args)
            return fn(*args)
        compiled.append(dict(name=fn.__code__.co_name, kwargs=kwargs, calls=[]))
        return run

    monkeypatch.setattr(asl_function, 'IMPL_OVERRIDE', None)
    monkeypatch.setattr(asl_function, '_compiled', {})
    monkeypatch.setattr(asl_function, '_compiler_failure', None)
    monkeypatch.setattr(torch, 'compile', compile)
    return compiled


def test_compiled_kernels_per_configuration(fake_compiler):
    z, target = torch.tensor([[0.5, -1.0], [2.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    eager = apply_asymmetric_loss(z, target, reduce=True, scale=0.5)
    options = ExecOptions('compiled', True)
    loss = apply_asymmetric_loss(z, target, options=options, reduce=True, scale=0.5)
    assert float(loss) == pytest.approx(float(eager), rel=1e-6)
    apply_asymmetric_loss(z, target, options=options, reduce=True, scale=0.25)  # same configuration
    apply_asymmetric_loss(z, target, params=ASLParams(gamma_neg=2.0), options=options, reduce=True)
    apply_asymmetric_loss(z, target, options=options)  # other outputs: element-wise
    # each configuration compiles its own copy of the kernel, named after it with a counter
    kernel = asl_function.loss_and_grad.__code__.co_name
    assert [c['name'] for c in fake_compiler] == [f'{kernel}_0', f'{kernel}_1', f'{kernel}_2']
    assert all(c['kwargs'] == dict(fullgraph=True, options=asl_function.INDUCTOR_OPTIONS) for c in fake_compiler)
    # a Python float scale reaches the compiled kernel as a 0-dim tensor (an input, not a constant)
    scales = [args[4] for args in fake_compiler[0]['calls']]
    assert all(isinstance(s, torch.Tensor) and s.dim() == 0 for s in scales)
    assert [float(s) for s in scales] == [0.5, 0.25]
    quality = apply_quality_focal_loss(z, target, target > 0, impl='compiled', scale=2.0)
    assert fake_compiler[-1]['name'] == f'{asl_function.quality_loss_and_grad.__code__.co_name}_3'
    assert isinstance(fake_compiler[-1]['calls'][0][4], torch.Tensor)
    torch.testing.assert_close(quality, 2.0 * apply_quality_focal_loss(z, target, target > 0))


def test_compiled_kernels_of_both_losses_with_equal_settings(fake_compiler):
    """The ASL and the quality focal loss with the same hyper-parameters and outputs are two kernels."""
    z, target = torch.tensor([[0.5, -1.0]]), torch.tensor([[1.0, 0.0]])
    params = ASLParams(gamma_pos=2.0, gamma_neg=2.0, clip=0.0)
    asl = apply_asymmetric_loss(z, target, params=params, options=ExecOptions('compiled', True), reduce=True)
    quality = apply_quality_focal_loss(z, target, target > 0, reduce=True, impl='compiled')
    assert len(fake_compiler) == 2
    # q = 1 on the positive: QFL's |1 - p|^2 BCE is ASL's L+ with gamma+ = 2; the negatives are the same
    assert float(quality) == pytest.approx(float(asl), rel=1e-6)


def test_compiler_failure_warns_once_and_runs_eagerly(monkeypatch):
    def broken(fn, **kwargs):
        def run(*args):
            raise Unsupported('no such construct\nsecond line')
        return run

    monkeypatch.setattr(asl_function, 'IMPL_OVERRIDE', None)
    monkeypatch.setattr(asl_function, '_compiled', {})
    monkeypatch.setattr(asl_function, '_compiler_failure', None)
    monkeypatch.setattr(torch, 'compile', broken)
    z, target = torch.tensor([[0.5, -1.0]]), torch.tensor([[1.0, 0.0]])
    with pytest.warns(UserWarning) as record:
        loss = apply_asymmetric_loss(z, target, options=ExecOptions('compiled', True), scale=0.5)
    assert [str(w.message) for w in record] == [
        'mmdet_asl: torch.compile failed to compile the ASL kernel (Unsupported: no such construct); the eager '
        "kernel computes the loss instead (impl='eager' skips compiling)."]
    assert asl_function._compiler_failure == 'Unsupported: no such construct'
    torch.testing.assert_close(loss, 0.5 * apply_asymmetric_loss(z, target))
    # afterwards nothing is compiled again, and a float scale stays a float
    assert asl_function._scale_input(0.5, 'compiled', z) == 0.5


def test_scale_input():
    z = torch.zeros(1, 1)
    assert asl_function._scale_input(0.5, 'eager', z) == 0.5 and asl_function._scale_input(None, 'compiled', z) is None
    tensor = torch.tensor(0.5)
    assert asl_function._scale_input(tensor, 'compiled', z) is tensor


def test_backward_scales_the_saved_gradient():
    """d(2 L)/dz = 2 dL/dz for the summed loss and for the quality focal loss; float16 logits get float16
    gradients."""
    z, target = torch.tensor([[0.5, -1.0], [2.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    for fn in (lambda x: apply_asymmetric_loss(x, target, reduce=True),
               lambda x: apply_quality_focal_loss(x, target, target > 0, reduce=True)):
        once, twice = z.clone().requires_grad_(), z.clone().requires_grad_()
        fn(once).backward()
        (2 * fn(twice)).backward()
        torch.testing.assert_close(twice.grad, 2 * once.grad)
    half = z.half().requires_grad_()
    apply_asymmetric_loss(half, target, reduce=True).backward()
    assert half.grad.dtype == torch.float16


def test_probe_sums_carry_no_gradient():
    z = torch.tensor([[0.5, -1.0]], requires_grad=True)
    loss, sums = apply_asymmetric_loss(z, torch.tensor([[1.0, 0.0]]), return_probe=True)
    assert loss.requires_grad and not sums.requires_grad


def test_apply_asymmetric_loss_arguments():
    z, target = torch.zeros(2, 3), torch.zeros(2, 3)
    assert apply_asymmetric_loss(z, target).shape == (2, 3)  # element-wise by default
    for clip, shown in ((0.1, '0.1'), (torch.tensor(1), 'tensor(1)'), (torch.zeros(2, 2), repr(torch.zeros(2, 2)))):
        refused(TypeError, f'clip as a tensor must be a floating 0-dim or (C,) tensor, got {shown}',
                apply_asymmetric_loss, z, target, clip=clip)
    refused(TypeError, "scale must be a real number, got str ('a')", apply_asymmetric_loss, z, target, scale='a')
    refused(TypeError, "scale must be a real number, got str ('a')", apply_quality_focal_loss, z, target, target > 0,
            scale='a')


@pytest.mark.parametrize('fn', ['asymmetric', 'quality'])
def test_empty_and_single_element_batches(fn):
    def loss(z, **kwargs):
        if fn == 'asymmetric':
            return apply_asymmetric_loss(z, torch.zeros(z.shape), **kwargs)
        return apply_quality_focal_loss(z, torch.zeros(z.shape), torch.zeros(z.shape, dtype=torch.bool), **kwargs)

    empty = torch.zeros(0, 3, dtype=torch.float16)
    assert loss(empty).shape == (0, 3) and loss(empty).dtype == torch.float32
    total = loss(empty, reduce=True)
    assert total.shape == () and float(total) == 0.0 and total.dtype == torch.float32
    # one element is no empty batch: the negative at z = 2 with the defaults costs p_m^g (-log(1 - p_m))
    p = sigmoid(2.0)
    expected = -(p - 0.05)**4 * math.log(1 - (p - 0.05)) if fn == 'asymmetric' else -p**2 * math.log(1 - p)
    assert float(loss(torch.full((1, 1), 2.0, dtype=F64))) == pytest.approx(expected, rel=1e-13)


def test_empty_batch_probe_sums():
    empty = torch.zeros(0, 3)
    loss, sums = apply_asymmetric_loss(empty, torch.zeros(0, 3), return_probe=True)
    assert sums.dtype == F64 and sums.tolist() == [0.0] * 4
    _, sums = apply_asymmetric_loss(empty, torch.zeros(0, 3), return_probe=True, probe_per_class=True)
    assert sums.dtype == F64 and sums.shape == (3, 4) and not sums.any()


def test_quality_argument_messages():
    z = torch.zeros(2, 3)
    q, pos = torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.bool)
    cases = [
        (([[0.0]], q, pos), {}, 'logits must be an (N, C) floating tensor, got list'),
        ((torch.zeros(3), q, pos), {}, 'logits must be an (N, C) floating tensor, got (3,)'),
        ((z, [[0.0]], pos), {}, 'quality must be a tensor of the shape of logits (2, 3), got list'),
        ((z, q, torch.zeros(2, dtype=torch.bool)), {}, 'positive must be a tensor of the shape of logits (2, 3), got '
         '(2,)'),
        ((z, q, pos), dict(weight=[1.0, 1.0]), 'weight must be (2, 1) or (2, 3), got list'),
        ((z, q, pos), dict(weight=torch.ones(2)), 'weight must be (2, 1) or (2, 3), got (2,)'),
        ((z, q, pos), dict(weight=torch.ones(3, 1)), 'weight must be (2, 1) or (2, 3), got (3, 1)'),
    ]
    for args, kwargs, message in cases:
        refused(ValueError, message, apply_quality_focal_loss, *args, **kwargs)


def test_quality_tensor_scale():
    z, quality, positive = quality_inputs()
    scaled = apply_quality_focal_loss(z, quality, positive, scale=torch.tensor(0.5))
    torch.testing.assert_close(scaled, 0.5 * quality_asymmetric_loss_reference(z, quality, positive), rtol=1e-13,
                               atol=0)


def test_asymmetric_loss_defaults_and_validate_off():
    z = torch.tensor([[0.0, 2.0]], dtype=F64)
    p_m = sigmoid(2.0) - 0.05  # gamma+ = 0, gamma- = 4, m = 0.05
    assert asymmetric_loss(z, torch.tensor([[1.0, 0.0]], dtype=F64)).tolist()[0] == pytest.approx(
        [math.log(2.0), -p_m**4 * math.log(1.0 - p_m)], rel=1e-14)
    nan = asymmetric_loss(torch.tensor([[math.nan]]), torch.tensor([[1.0]]), validate=False)  # not checked
    assert math.isnan(float(nan))
