"""Probability-gap probe (Eq. 9-10) and the adaptive asymmetry controller (Eq. 11): hand-computed values,
direction, bounds, smoothing, warm-up, state, and the hook's argument checks at build time."""
import math

import pytest
import torch
from mmengine.registry import HOOKS

import mmdet_asl  # noqa: F401
from mmdet_asl.engine import AsymmetryController, adaptive_gamma_update, probability_gap_from_sums
from mmdet_asl.engine.asymmetry_controller import check_adaptive_cfg
from mmdet_asl.models import AsymmetricLoss
from mmdet_asl.ops.asl import probe_sums_reference
from probe_paths import kernel_path_fixture  # noqa: F401  (the kernel_path fixture: eager and compiled)

# p = sigmoid(z) of a 3 x 3 example
P = torch.tensor([[0.9, 0.2, 0.4],
                  [0.3, 0.6, 0.1],
                  [0.7, 0.5, 0.8]], dtype=torch.float64)
LABELS = torch.tensor([0, 3, 2])  # index labels, 3 = background
# weight 0 on a negative (0, 2), a negative (1, 1) and the positive (2, 2)
WEIGHT = torch.tensor([[1., 1., 0.],
                       [1., 0., 1.],
                       [1., 1., 0.]])


def probe(loss, z, target, weight=None):
    loss.pop_probe_sums()
    loss(z, target, weight=weight)
    return tuple(float(v) for v in probability_gap_from_sums(loss.pop_probe_sums()))


def test_probe_index_labels_by_hand(kernel_path):
    loss = AsymmetricLoss(probe=True, impl=kernel_path)
    z = torch.logit(P).float()
    # positives: (0, 0) p = .9 and (2, 2) p = .8 -> p_t+ = .85
    # negatives, 1 - p: .8 .6 | .7 .4 .9 | .3 .5 -> 4.2 / 7 = .6
    assert probe(loss, z, LABELS) == pytest.approx((0.85, 0.6, 0.25), abs=1e-6)
    # weight 0 leaves out (0, 2) (1 - p = .6), (1, 1) (.4) and the positive (2, 2):
    # p_t+ = .9; negatives .8 | .7 .9 | .3 .5 -> 3.2 / 5 = .64
    assert probe(loss, z, LABELS, WEIGHT) == pytest.approx((0.9, 0.64, 0.26), abs=1e-6)
    # a per-sample weight (N,) with a zero drops the whole row 2 (its positive .8 and negatives .3 .5):
    # p_t+ = .9; negatives .8 .6 | .7 .4 .9 -> 3.4 / 5 = .68
    assert probe(loss, z, LABELS, torch.tensor([1., 2., 0.])) == pytest.approx((0.9, 0.68, 0.22), abs=1e-6)


def test_probe_dense_targets_by_hand(kernel_path):
    loss = AsymmetricLoss(probe=True, impl=kernel_path)
    z = torch.logit(P).float()
    dense = torch.tensor([[1., 0., 1.],
                          [0., 0., 0.],
                          [0., 1., 0.]])
    # positives: .9, .4, .5 -> 1.8 / 3 = .6; negatives 1 - p: .8 | .7 .4 .9 | .3 .2 -> 3.3 / 6 = .55
    assert probe(loss, z, dense) == pytest.approx((0.6, 0.55, 0.05), abs=1e-6)
    # weight 0 drops the positive (0, 2) (.4) and the negatives (1, 1) (.4) and (2, 2) (.2):
    # p_t+ = (.9 + .5) / 2 = .7; negatives .8 | .7 .9 | .3 -> 2.7 / 4 = .675
    assert probe(loss, z, dense, WEIGHT) == pytest.approx((0.7, 0.675, 0.025), abs=1e-6)
    # soft target .5 at (1, 0) (p = .3): half a positive (.5 * .3) and half a negative (.5 * .7)
    soft = dense.clone()
    soft[1, 0] = 0.5
    pos = (0.9 + 0.4 + 0.5 + 0.5 * 0.3) / 3.5
    neg = (0.8 + 0.5 * 0.7 + 0.4 + 0.9 + 0.3 + 0.2) / 5.5
    assert probe(loss, z, soft) == pytest.approx((pos, neg, pos - neg), abs=1e-6)


def test_probe_per_class_by_hand(kernel_path):
    loss = AsymmetricLoss(probe=True, probe_per_class=True, impl=kernel_path)
    z = torch.logit(P).float()
    rows = {  # per class: [sum p over positives, #positives, sum 1 - p over negatives, #negatives]
        'index': [[0.9, 1, 0.7 + 0.3, 2], [0, 0, 0.8 + 0.4 + 0.5, 3], [0.8, 1, 0.6 + 0.9, 2]],
        # WEIGHT drops (0, 2), (1, 1) and the positive (2, 2)
        'index, weighted': [[0.9, 1, 1.0, 2], [0, 0, 0.8 + 0.5, 2], [0, 0, 0.9, 1]],
        'dense': [[0.9, 1, 0.7 + 0.3, 2], [0.5, 1, 0.8 + 0.4, 2], [0.4, 1, 0.9 + 0.2, 2]],
    }
    dense = torch.tensor([[1., 0., 1.], [0., 0., 0.], [0., 1., 0.]])
    for case, target, weight in (('index', LABELS, None), ('index, weighted', LABELS, WEIGHT),
                                 ('dense', dense, None)):
        loss(z, target, weight=weight)
        sums = loss.pop_probe_sums()
        assert sums.dtype == torch.float64 and sums.shape == (3, 4), case
        torch.testing.assert_close(sums, torch.tensor(rows[case], dtype=torch.float64), rtol=1e-6, atol=1e-6,
                                   msg=case)
        torch.testing.assert_close(sums, probe_sums_reference(z, target, weight, per_class=True), rtol=1e-6,
                                   atol=1e-6, msg=case)


def test_half_keeps_probe_sums_and_gamma_in_float64():
    loss = AsymmetricLoss(probe=True, gamma_neg=3.0).half()
    loss.gamma_neg = 3.0 + 1e-4  # below float16's resolution at 3 (0.002)
    assert loss.gamma_neg_buffer.dtype == torch.float64 and loss.gamma_neg == 3.0 + 1e-4
    z = torch.full((1000, 80), -3.0, dtype=torch.half)  # 80000 negative slots: more than float16's 65504
    labels = torch.full((1000, ), 80)
    labels[:10] = 0
    loss(z, labels)
    loss(z, labels)
    sums = loss.pop_probe_sums()
    assert sums.dtype == torch.float64 and sums[1] == 20 and sums[3] == 2 * 79990
    pt_neg = float(1 - torch.sigmoid(torch.tensor(-3.0, dtype=torch.half).double()))
    assert float(probability_gap_from_sums(sums)[1]) == pytest.approx(pt_neg, abs=1e-6)
    gamma = torch.linspace(1, 2, 80, dtype=torch.float64) + 1e-4
    loss.gamma_neg = gamma
    loss.float().half()
    assert loss.gamma_neg.dtype == torch.float64 and torch.equal(loss.gamma_neg, gamma)


def test_gamma_neg_is_not_model_state():
    """The config's gamma- is the model's: a checkpoint's (also a legacy one that carries it) is not loaded;
    ProbabilityGapHook keeps an adapted gamma- in its own checkpoint entry."""
    trained = AsymmetricLoss(gamma_neg=4.0)
    trained.gamma_neg = 2.5
    state = trained.state_dict()
    assert 'gamma_neg_buffer' not in state and 'probe_sums' not in state
    fresh = AsymmetricLoss(gamma_neg=7.0)
    fresh.load_state_dict(dict(state, gamma_neg_buffer=torch.tensor(2.5, dtype=torch.float64)), strict=True)
    assert fresh.gamma_neg == 7.0


def test_probe_only_in_training_and_sums_accumulate():
    loss = AsymmetricLoss(probe=True)
    z = torch.logit(P).float()
    loss(z, LABELS)
    loss(z, LABELS)
    sums = loss.pop_probe_sums()
    torch.testing.assert_close(sums, torch.tensor([3.4, 4., 8.4, 14.], dtype=sums.dtype), rtol=1e-6, atol=1e-6)
    assert loss.pop_probe_sums().abs().sum() == 0
    loss.eval()
    loss(z, LABELS)
    assert loss.pop_probe_sums().abs().sum() == 0


def test_gap_of_sums_is_nan_without_a_side():
    pt_pos, pt_neg, gap = probability_gap_from_sums(torch.tensor([[0., 0., 3., 4.], [1., 2., 0., 0.]]))
    assert math.isnan(pt_pos[0]) and pt_neg[0] == 0.75 and math.isnan(gap[0])
    assert pt_pos[1] == 0.5 and math.isnan(pt_neg[1]) and math.isnan(gap[1])


# ------------------------------------------------------------------------------------------ controller
def test_scalar_update_direction_and_bounds():
    # Delta p below the target (negatives too confident relative to positives, as with CE): raise gamma-
    assert adaptive_gamma_update(2.0, gap=-0.2, target=0.1, lam=1.0, gamma_min=0, gamma_max=10) == \
        pytest.approx(2.3)
    assert adaptive_gamma_update(2.0, gap=0.3, target=0.1, lam=1.0, gamma_min=0, gamma_max=10) == \
        pytest.approx(1.8)
    assert adaptive_gamma_update(9.9, gap=-1.0, target=0.3, lam=1.0, gamma_min=0, gamma_max=10) == 10
    assert adaptive_gamma_update(0.1, gap=1.0, target=0.0, lam=1.0, gamma_min=0.0, gamma_max=10) == 0.0
    assert adaptive_gamma_update(3.0, gap=float('nan'), target=0.1, lam=1.0, gamma_min=0, gamma_max=10) == 3.0


def sums_of(pt_pos, n_pos, pt_neg, n_neg):
    return torch.tensor([pt_pos * n_pos, n_pos, pt_neg * n_neg, n_neg], dtype=torch.float64)


def test_controller_gamma_and_margin_move_together_in_the_direction_that_raises_the_gap():
    cfg = check_adaptive_cfg(dict(target=0.1, lam=1.0, clip_lam=0.1, adapt=('gamma_neg', 'clip'),
                                  clip_max=0.5))
    c = AsymmetryController(cfg, gamma_neg=2.0, clip=0.05)
    c.update(sums_of(0.5, 10, 0.9, 100), iteration=0)  # Delta p = -0.4: shortfall 0.5
    assert float(c.gamma_neg) == pytest.approx(2.5) and float(c.clip) == pytest.approx(0.1)
    c.update(sums_of(0.9, 10, 0.5, 100), iteration=1)  # Delta p = 0.4: excess 0.3
    assert float(c.gamma_neg) == pytest.approx(2.2) and float(c.clip) == pytest.approx(0.07)
    for it in range(2, 40):  # bounds
        c.update(sums_of(0.1, 10, 0.99, 100), iteration=it)
    assert float(c.gamma_neg) == 10.0 and float(c.clip) == 0.5


def test_controller_warmup_and_minimum_count_rule():
    cfg = check_adaptive_cfg(dict(target=0.0, lam=1.0, warmup_iters=2, min_positives=5))
    c = AsymmetryController(cfg, gamma_neg=4.0, clip=0.05)
    for it in range(2):  # warm-up: nothing moves, nothing is pooled
        assert not c.update(sums_of(0.9, 10, 0.1, 10), iteration=it)
    assert float(c.gamma_neg) == 4.0 and c.pending.abs().sum() == 0
    assert not c.update(sums_of(0.2, 3, 0.6, 10), iteration=2)  # 3 positives < 5: pooled, no update
    assert float(c.gamma_neg) == 4.0
    assert c.update(sums_of(0.6, 2, 0.2, 10), iteration=3)  # pooled: p_t+ = (.6 + 1.2)/5 = .36, p_t- = .4
    assert float(c.gamma_neg) == pytest.approx(4.0 + 0.04) and c.pending.abs().sum() == 0


def test_controller_per_class_with_per_class_targets():
    cfg = check_adaptive_cfg(dict(target=[0.0, 0.2, 0.1], per_class=True, lam=1.0, min_positives=4))
    c = AsymmetryController(cfg, gamma_neg=3.0, clip=0.05)
    sums = torch.stack([sums_of(0.5, 4, 0.5, 10),     # class 0: Delta p 0 = target: stays
                        sums_of(0.5, 8, 0.6, 10),     # class 1: Delta p -.1, target .2: +.3
                        sums_of(0.9, 1, 0.1, 10)])    # class 2: one positive, below the count: pooled
    assert c.update(sums, iteration=0).tolist() == [True, True, False]
    torch.testing.assert_close(c.gamma_neg, torch.tensor([3.0, 3.3, 3.0], dtype=torch.float64))
    assert c.pending[2].tolist() == pytest.approx([0.9, 1, 1, 10]) and c.pending[:2].abs().sum() == 0
    with pytest.raises(ValueError, match='per-class probe sums'):
        c.update(sums_of(0.5, 4, 0.5, 10), iteration=1)
    with pytest.raises(ValueError, match='4 classes, the adaptive state 3'):
        c.update(torch.zeros(4, 4, dtype=torch.float64), iteration=1)


def test_controller_state_round_trip():
    cfg = check_adaptive_cfg(dict(target=0.1, per_class=True, lam=0.5))
    c = AsymmetryController(cfg, gamma_neg=3.0, clip=0.05)
    c.update(torch.stack([sums_of(0.5, 20, 0.7, 9), sums_of(0.5, 2, 0.7, 9)]), iteration=0)
    restored = AsymmetryController(cfg, gamma_neg=7.0, clip=0.0)
    restored.load_state_dict(c.state_dict())
    for key in ('gamma_neg', 'clip', 'pending'):
        assert torch.equal(getattr(restored, key), getattr(c, key)), key
    with pytest.raises(ValueError, match='per_class'):
        AsymmetryController(check_adaptive_cfg(dict(target=0.1)), 1.0, 0.0).load_state_dict(c.state_dict())


# ------------------------------------------------------------------------------- arguments at build
@pytest.mark.parametrize('adaptive,error,match', [
    (dict(lam=0.1), ValueError, 'target'),
    (dict(target=0.1, lamda=0.1), ValueError, 'unknown'),
    (dict(target=0.1, warmup_iters='10'), TypeError, r'adaptive\.warmup_iters must be an integer'),
    (dict(target=0.1, warmup_iters=-1), ValueError, r'adaptive\.warmup_iters'),
    (dict(target=0.1, gamma_max=float('inf')), ValueError, r'adaptive\.gamma_max must be finite'),
    (dict(target=0.1, gamma_min=5, gamma_max=1), ValueError, r'adaptive\.gamma_max must be >= 5'),
    (dict(target=0.1, gamma_min=-1), ValueError, r'adaptive\.gamma_min'),
    (dict(target=float('nan')), ValueError, r'adaptive\.target must be finite'),
    (dict(target=1.5), ValueError, r'adaptive\.target must be <= 1'),
    (dict(target='0.1'), TypeError, r'adaptive\.target must be a real number'),
    (dict(target=0.1, lam=0), ValueError, r'adaptive\.lam must be > 0'),
    (dict(target=0.1, lam=True), TypeError, r'adaptive\.lam'),
    (dict(target=[0.1, 0.2]), ValueError, 'per_class=True'),
    (dict(target=[0.1, 'x'], per_class=True), TypeError, r'adaptive\.target\[1\]'),
    (dict(target=0.1, per_class='yes'), TypeError, r'adaptive\.per_class'),
    (dict(target=0.1, min_positives=0), ValueError, r'adaptive\.min_positives'),
    (dict(target=0.1, adapt=('gamma_pos', )), ValueError, r'adaptive\.adapt'),
    (dict(target=0.1, clip_max=1.0), ValueError, r'adaptive\.clip_max must be < 1'),
    (dict(target=0.1, clip_lam=float('inf')), ValueError, r'adaptive\.clip_lam'),
    (dict(target=0.1, init='resume'), ValueError, r'adaptive\.init'),
])
def test_hook_rejects_bad_adaptive_settings_at_build(adaptive, error, match):
    with pytest.raises(error, match=match):
        HOOKS.build(dict(type='ProbabilityGapHook', adaptive=adaptive))


@pytest.mark.parametrize('kwargs,match', [
    (dict(adaptive=[0.1]), 'adaptive must be a dict'),
    (dict(prefix=3), 'prefix'),
    (dict(losses='loss_cls'), 'losses'),
    (dict(per_class_interval=0), 'per_class_interval'),
])
def test_hook_rejects_bad_arguments_at_build(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        HOOKS.build(dict(type='ProbabilityGapHook', **kwargs))


def test_hook_fills_defaults():
    hook = HOOKS.build(dict(type='ProbabilityGapHook', adaptive=dict(target=0.1, adapt='clip')))
    assert hook.adaptive['adapt'] == ('clip', ) and hook.adaptive['min_positives'] == 1
    assert HOOKS.build(dict(type='ProbabilityGapHook', adaptive=dict(target=0.1, per_class=True))) \
        .adaptive['min_positives'] == 10


# ------------------------------------------------------------------------- per-class gamma- and margin
def test_per_class_gamma_and_margin_through_the_kernel_equal_the_reference(kernel_path):
    """A (C,) gamma- and a (C,) or 0-dim tensor m reach the fused kernel (no second pass): loss and gradient
    equal Eq. 7 written per class, for index and dense targets."""
    from mmdet_asl.ops.asl import asymmetric_loss_reference
    from mmdet_asl.ops.asl.reference import dense_target
    torch.manual_seed(0)
    z = (torch.randn(40, 6) * 3).requires_grad_(True)
    labels = torch.randint(0, 7, (40, ))
    gamma = torch.tensor([0.0, 1.0, 2.5, 4.0, 3.0, 6.0], dtype=torch.float64)
    for clip in (torch.tensor([0.0, 0.05, 0.1, 0.2, 0.0, 0.3], dtype=torch.float64), torch.tensor(0.07)):
        for target in (labels, dense_target(labels, 6, torch.float32)):
            loss = AsymmetricLoss(gamma_pos=1.0, clip=0.05, reduction='sum', impl=kernel_path)
            loss.gamma_neg, loss.clip = gamma, clip
            if clip.dim() == 0:
                loss.clip_dynamic = True  # a 0-dim adaptive m, as ProbabilityGapHook sets it
            got = loss(z, target)
            grad, = torch.autograd.grad(got, z)
            zd = z.detach().double().requires_grad_(True)
            ref = asymmetric_loss_reference(zd, dense_target(target, 6), 1.0, gamma, clip.double()).sum()
            ref_grad, = torch.autograd.grad(ref, zd)
            torch.testing.assert_close(got.double(), ref.detach(), rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(grad.double(), ref_grad, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match='clip'):
        loss.clip = torch.tensor([0.0, 1.0, 0, 0, 0, 0])
