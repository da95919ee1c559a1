"""The adaptive asymmetry controller (Eq. 11) refuses a saved state that does not fit it (shape, mode,
number of classes, non-finite or out-of-bound values, each error naming the key), and skips an update
where the probability gap is undefined (no negative slots pooled, or NaN sums) instead of writing NaN."""
import math

import pytest
import torch

from mmdet_asl.engine import AsymmetryController
from mmdet_asl.engine.asymmetry_controller import check_adaptive_cfg

F64 = torch.float64


def sums_of(pt_pos, n_pos, pt_neg, n_neg):
    """Probe sums (Eq. 9-10) of n_pos positive slots of mean p pt_pos and n_neg negatives of mean 1 - p pt_neg."""
    return torch.tensor([pt_pos * n_pos, n_pos, pt_neg * n_neg, n_neg], dtype=F64)


def controller(**adaptive):
    return AsymmetryController(check_adaptive_cfg(dict(dict(target=0.1, lam=0.01), **adaptive)), 4.0, 0.05)


# ------------------------------------------------------------------------------- undefined gap: no update
def test_global_pool_without_negatives_keeps_gamma_and_waits():
    c = controller()
    assert not c.update(sums_of(0.75, 4, 0.0, 0), iteration=0)  # 4 positives, no negative slot
    assert float(c.gamma_neg) == 4.0 and float(c.clip) == 0.05
    assert c.pending.tolist() == [3.0, 4.0, 0.0, 0.0]  # kept: the next negatives complete the pool
    assert c.update(sums_of(0.5, 2, 0.6, 5), iteration=1)
    # pooled: p_t+ = (3 + 1) / 6 = 2/3, p_t- = 3 / 5 = 0.6, Delta p = 1/15; 4 + 0.01 (0.1 - 1/15)
    assert float(c.gamma_neg) == pytest.approx(4.0 + 0.01 * (0.1 - 1 / 15), abs=1e-15)
    assert c.pending.abs().sum() == 0


@pytest.mark.parametrize('adapt', [('gamma_neg', ), ('clip', ), ('gamma_neg', 'clip')])
def test_per_class_pool_without_negatives_keeps_that_class(adapt):
    c = controller(per_class=True, min_positives=1, adapt=adapt, clip_lam=0.1)
    sums = torch.stack([sums_of(0.75, 4, 0.0, 0),    # class 0: positives only, Delta p undefined
                        sums_of(0.5, 2, 0.9, 10)])   # class 1: Delta p = -0.4, shortfall 0.5
    assert c.update(sums, iteration=0).tolist() == [False, True]
    gamma = [4.0, 4.0 + 0.01 * 0.5] if 'gamma_neg' in adapt else [4.0, 4.0]
    clip = [0.05, 0.05 + 0.1 * 0.5] if 'clip' in adapt else [0.05, 0.05]
    assert c.gamma_neg.tolist() == pytest.approx(gamma, abs=1e-15)
    assert c.clip.tolist() == pytest.approx(clip, abs=1e-15)
    assert not any(math.isnan(v) for v in c.gamma_neg.tolist() + c.clip.tolist())


def test_nan_sums_update_nothing_and_are_dropped():
    """NaN sums (NaN logits with validate=False) leave gamma- as it was, and the pool recovers afterwards."""
    for per_class in (False, True):
        c = controller(per_class=per_class, min_positives=1)
        bad = sums_of(0.5, 2, 0.6, 5)
        bad[0] = float('nan')
        if per_class:
            bad = torch.stack([bad, sums_of(0.5, 2, 0.6, 5)])
        c.update(bad, iteration=0)
        assert bool(c.gamma_neg.isfinite().all()) and bool(c.pending.isfinite().all())
        assert c.gamma_neg.reshape(-1)[0] == 4.0
        if per_class:  # class 1 was fine: Delta p = 0.5 - 0.6 = -0.1, shortfall 0.2
            assert float(c.gamma_neg[1]) == pytest.approx(4.0 + 0.01 * 0.2, abs=1e-15)
        c.update(sums_of(0.5, 2, 0.6, 5).expand(2, 4) if per_class else sums_of(0.5, 2, 0.6, 5), iteration=1)
        assert c.gamma_neg.reshape(-1)[0] == pytest.approx(4.0 + 0.01 * 0.2, abs=1e-15)


# ---------------------------------------------------------------------------------------- saved state
def good_state(per_class, num_classes=3):
    if per_class:
        return dict(per_class=True, gamma_neg=torch.full((num_classes, ), 4.5, dtype=F64),
                    clip=torch.full((num_classes, ), 0.1, dtype=F64), pending=torch.zeros(num_classes, 4, dtype=F64))
    return dict(per_class=False, gamma_neg=torch.tensor(4.5, dtype=F64), clip=torch.tensor(0.1, dtype=F64),
                pending=torch.zeros(4, dtype=F64))


@pytest.mark.parametrize('per_class,key,value,match', [
    (False, 'gamma_neg', torch.tensor([3.08, 4.08]), r"\['gamma_neg'\] must have shape \(\) .*got shape \(2,\)"),
    (False, 'clip', torch.tensor([0.1, 0.1]), r"\['clip'\] must have shape \(\)"),
    (False, 'pending', torch.zeros(2, 4), r"\['pending'\] must hold the four sums \(4,\)"),
    (True, 'gamma_neg', torch.full((2, ), 4.0), r"\['gamma_neg'\] must have shape \(3,\) .*got shape \(2,\)"),
    (True, 'clip', torch.tensor(0.1), r"\['clip'\] must have shape \(3,\)"),
    (True, 'pending', torch.zeros(4), r"\['pending'\] must hold per-class sums \(C, 4\)"),
    (False, 'gamma_neg', torch.tensor(float('nan')), r"\['gamma_neg'\] must be finite and in \[0.0, inf\], got nan"),
    (False, 'gamma_neg', torch.tensor(-1.0), r"\['gamma_neg'\] must be finite"),
    (False, 'gamma_neg', torch.tensor(12.0), r"\['gamma_neg'\] lies outside adaptive.gamma_min/gamma_max = "
                                             r"\[0.0, 10.0\].*12.0"),
    (False, 'clip', torch.tensor(5.0), r"\['clip'\] must be finite and in \[0.0, 1.0\), got 5.0"),
    (True, 'gamma_neg', torch.tensor([4.0, float('inf'), 4.0]), r"\['gamma_neg'\] must be finite.*class 1: inf"),
    (False, 'pending', torch.tensor([1.0, float('nan'), 0.0, 0.0]), r"\['pending'\] must hold finite sums"),
    (False, 'pending', torch.tensor([1.0, -2.0, 0.0, 0.0]), r"\['pending'\] must hold finite sums"),
    (False, 'gamma_neg', 'four', r"\['gamma_neg'\] must be a number"),
])
def test_load_state_dict_refuses_what_does_not_fit(per_class, key, value, match):
    c = controller(per_class=per_class)
    state = dict(good_state(per_class), **{key: value})
    with pytest.raises((ValueError, TypeError), match=r"checkpoint\['x'\]" + match):
        c.load_state_dict(state, name="checkpoint['x']")
    assert float(c.gamma_neg.reshape(-1)[0]) == 4.0  # nothing of a refused state was taken
    c.load_state_dict(good_state(per_class))
    assert float(c.gamma_neg.reshape(-1)[0]) == 4.5


def test_adapted_margin_outside_its_bounds_and_class_count_of_the_targets():
    c = controller(adapt=('gamma_neg', 'clip'), clip_max=0.2)
    with pytest.raises(ValueError, match=r"\['clip'\] lies outside adaptive.clip_min/clip_max = \[0.0, 0.2\]"):
        c.load_state_dict(dict(good_state(False), clip=torch.tensor(0.5, dtype=F64)))
    # one Delta p target per class fixes C = 3: a saved state of 2 classes is another model's
    c = controller(target=[0.1, 0.2, 0.3], per_class=True)
    with pytest.raises(ValueError, match=r"\['pending'\] holds 2 classes, the adaptive state 3"):
        c.load_state_dict(good_state(True, num_classes=2))


def test_values_no_update_moved_are_accepted():
    """A config value outside the adaptive bounds stays until the first update clamps it, and a value that is
    not adapted is not bounded: a checkpoint saved before any update (or of such a value) resumes."""
    cfg = check_adaptive_cfg(dict(target=0.1, gamma_max=10.0, warmup_iters=5))
    c = AsymmetryController(cfg, gamma_neg=12.0, clip=0.3)  # m = 0.3 above clip_max = 0.2, but not adapted
    c.update(sums_of(0.5, 2, 0.6, 5), iteration=0)  # warm-up
    restored = AsymmetryController(cfg, gamma_neg=12.0, clip=0.3)
    restored.load_state_dict(c.state_dict())
    assert float(restored.gamma_neg) == 12.0 and float(restored.clip) == 0.3
    # the first update clamps gamma- into its bounds
    restored.update(sums_of(0.5, 2, 0.6, 5), iteration=5)
    assert float(restored.gamma_neg) == 10.0


def test_gamma_min_bounds_the_update():
    """Delta p 1.0 above a target of 0 with lam = 1 moves gamma- from 4 to 3, held at gamma_min = 3.5; the margin
    at clip_min the same way."""
    c = controller(target=0.0, lam=1.0, gamma_min=3.5, adapt=('gamma_neg', 'clip'), clip_lam=1.0, clip_min=0.02)
    c.update(sums_of(1.0, 2, 0.0, 2), iteration=0)   # p_t+ = 1, p_t- = 0: Delta p = 1
    assert float(c.gamma_neg) == 3.5 and float(c.clip) == 0.02


@pytest.mark.parametrize('adaptive,match', [
    (dict(target=0.1, clip_min=0.1, clip_max=0.05), r'adaptive\.clip_max must be >= 0\.1'),
    (dict(target=[0.1, -1.5], per_class=True), r'adaptive\.target\[1\] must be >= -1'),
    (dict(target=[0.1, 1.5], per_class=True), r'adaptive\.target\[1\] must be <= 1'),
    (dict(target=0.1, clip_min=-0.1), r'adaptive\.clip_min must be >= 0'),
])
def test_adaptive_bounds_refused_at_build(adaptive, match):
    with pytest.raises(ValueError, match=match):
        check_adaptive_cfg(adaptive)
