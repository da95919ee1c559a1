"""Behaviours of ``mmdet_asl.engine`` that mutants of it showed unchecked.

The adaptive asymmetry controller (Eq. 11): the exact text of each refusal of ``check_adaptive_cfg`` and
``load_state_dict``, the open and closed ends of every bound, the types it returns (floats, ints, a tuple of
targets), float64 pooling of float32 sums, fractional (soft-target) slot counts, the global mode summing
per-class sums, warm-up masks, and a saved value still at its starting point. Every expected value is
written by hand from the numbers the test passes in.
"""
import re

import numpy as np
import pytest
import torch

from mmdet_asl.engine import AsymmetryController
from mmdet_asl.engine.asymmetry_controller import check_adaptive_cfg, probability_gap_from_sums

F64 = torch.float64


def controller(gamma_neg=4.0, clip=0.05, **adaptive):
    return AsymmetryController(check_adaptive_cfg(dict(dict(target=0.1, lam=0.01), **adaptive)), gamma_neg, clip)


def state(per_class=False, num_classes=3, **values):
    shape = (num_classes, ) if per_class else ()
    base = dict(per_class=per_class, gamma_neg=torch.full(shape, 4.5, dtype=F64),
                clip=torch.full(shape, 0.1, dtype=F64), pending=torch.zeros(shape + (4, ), dtype=F64))
    return dict(base, **values)


def refused(exc, message, fn, *args, **kwargs):
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    text = info.value.args[0] if info.value.args else None
    assert text == message, text


# ------------------------------------------------------------------------------------ check_adaptive_cfg
def test_cfg_messages_are_exact():
    refused(TypeError, 'adaptive must be a dict or None, got list', check_adaptive_cfg, [0.1])
    refused(ValueError, "adaptive has unknown keys ['gama']; expected ['adapt', 'clip_lam', 'clip_max', 'clip_min', "
            "'gamma_max', 'gamma_min', 'init', 'lam', 'min_positives', 'per_class', 'target', 'warmup_iters']",
            check_adaptive_cfg, dict(target=0.1, gama=2))
    refused(ValueError, 'adaptive.target is an empty sequence', check_adaptive_cfg, dict(target=[], per_class=True))
    refused(TypeError, "adaptive.lam must be a real number, got str ('0.1')", check_adaptive_cfg,
            dict(target=0.1, lam='0.1'))
    refused(TypeError, 'adaptive.warmup_iters must be an integer, got float (1.5)', check_adaptive_cfg,
            dict(target=0.1, warmup_iters=1.5))


@pytest.mark.parametrize('key,value,message', [
    ('target', -1.5, 'adaptive.target must be >= -1, got -1.5'),
    ('clip_lam', 0, 'adaptive.clip_lam must be > 0, got 0.0'),
    ('clip_lam', -0.5, 'adaptive.clip_lam must be > 0, got -0.5'),
    ('clip_min', 1, 'adaptive.clip_min must be < 1, got 1.0'),
    ('clip_min', 1.5, 'adaptive.clip_min must be < 1, got 1.5'),
])
def test_cfg_bounds(key, value, message):
    refused(ValueError, message, check_adaptive_cfg, dict({'target': 0.1, key: value}))


@pytest.mark.parametrize('adapt', [(), []])
def test_cfg_refuses_an_empty_adapt(adapt):
    refused(ValueError, f"adaptive.adapt must be a non-empty subset of ('gamma_neg', 'clip'), got {adapt!r}",
            check_adaptive_cfg, dict(target=0.1, adapt=adapt))


def test_cfg_closed_ends_are_accepted():
    assert check_adaptive_cfg(dict(target=1))['target'] == 1.0   # target in [-1, 1]
    assert check_adaptive_cfg(dict(target=-1))['target'] == -1.0


def test_cfg_returns_converted_values():
    """Numbers come back as Python floats and ints (numpy scalars and ints converted), targets as a tuple."""
    cfg = check_adaptive_cfg(dict(target=0, lam=1, gamma_min=np.int64(1), gamma_max=np.float32(2.0),
                                  warmup_iters=np.int64(3), min_positives=np.int64(2), clip_lam=1, clip_min=0,
                                  clip_max=np.float64(0.5), adapt=['clip', 'gamma_neg']))
    expected = dict(target=0.0, lam=1.0, gamma_min=1.0, gamma_max=2.0, clip_lam=1.0, clip_min=0.0, clip_max=0.5)
    for key, value in expected.items():
        assert type(cfg[key]) is float and cfg[key] == value, (key, cfg[key])
    for key, value in dict(warmup_iters=3, min_positives=2).items():
        assert type(cfg[key]) is int and cfg[key] == value, (key, cfg[key])
    assert cfg['adapt'] == ('gamma_neg', 'clip')
    per_class = check_adaptive_cfg(dict(target=[0, 0.5], per_class=True))
    assert per_class['target'] == (0.0, 0.5) and all(type(t) is float for t in per_class['target'])
    assert AsymmetryController(per_class, 4.0, 0.05).num_classes == 2  # a list of targets fixes C


# --------------------------------------------------------------------------------- probability gap
def test_gap_of_fractional_counts():
    """Soft targets give fractional slot counts: 0.5 positive slot of p-mass 0.4 is p_t+ = 0.8, 0.5 negative
    slot of (1 - p)-mass 0.3 is p_t- = 0.6."""
    pt_pos, pt_neg, gap = probability_gap_from_sums(torch.tensor([0.4, 0.5, 0.3, 0.5], dtype=F64))
    assert float(pt_pos) == pytest.approx(0.8, abs=1e-15) and float(pt_neg) == pytest.approx(0.6, abs=1e-15)
    assert float(gap) == pytest.approx(0.2, abs=1e-15)


def test_gap_of_float32_sums_is_float64():
    # 2**24 + 1 is not a float32; as float64 the ratio is exactly (2**24 + 1) / 2**25
    sums = torch.tensor([2.0**24 + 1, 2.0**25, 1.0, 4.0], dtype=F64).to(torch.float32)
    sums64 = torch.tensor([2.0**24, 2.0**25, 1.0, 4.0], dtype=F64)  # what the float32 tensor holds
    pt_pos, pt_neg, gap = probability_gap_from_sums(sums)
    assert pt_pos.dtype == pt_neg.dtype == gap.dtype == F64
    third = torch.tensor([1.0, 3.0, 1.0, 3.0], dtype=torch.float32)
    assert float(probability_gap_from_sums(third)[0]) == 1 / 3  # 1/3 in float64, not float32's 1/3
    assert float(probability_gap_from_sums(sums64)[0]) == 0.5


# ------------------------------------------------------------------------------------------ update
def test_update_pools_in_float64():
    c = controller()
    assert c.state_dict()['pending'].dtype == F64
    # no negative slot yet: the pool waits, and 2**24 + 1 positives are counted exactly
    c.update(torch.tensor([0.0, 2.0**24, 0.0, 0.0]), iteration=0)
    c.update(torch.tensor([0.0, 1.0, 0.0, 0.0]), iteration=1)
    assert c.pending.dtype == F64 and c.pending.tolist() == [0.0, 2.0**24 + 1, 0.0, 0.0]


def test_global_mode_sums_per_class_sums():
    """(C, 4) sums in the global mode are added over the classes: 3 positives of mean p 2/3 and 4 negatives of
    mean 1 - p 0.5 give Delta p = 1/6; 4 + 0.01 (0.1 - 1/6)."""
    c = controller()
    sums = torch.tensor([[1.0, 1.0, 1.0, 3.0], [1.0, 2.0, 1.0, 1.0]], dtype=F64)
    assert bool(c.update(sums, iteration=0))
    assert float(c.gamma_neg) == pytest.approx(4.0 + 0.01 * (0.1 - 1 / 6), abs=1e-15)


def test_global_mode_sums_float32_classes_in_float64():
    c = controller(min_positives=2**25)
    c.update(torch.tensor([[0.0, 2.0**24, 0.0, 1.0], [0.0, 1.0, 0.0, 1.0]]), iteration=0)
    assert c.pending.tolist() == [0.0, 2.0**24 + 1, 0.0, 2.0]


def test_fractional_negative_count_updates():
    """Half a negative slot (a soft target) defines p_t-: p_t+ = 0.9, p_t- = 0.4 / 0.5 = 0.8, Delta p = 0.1,
    on target: gamma- moves by lam * 0 (it is updated, and the pool emptied)."""
    c = controller()
    assert bool(c.update(torch.tensor([0.9, 1.0, 0.4, 0.5], dtype=F64), iteration=0))
    assert float(c.gamma_neg) == pytest.approx(4.0, abs=1e-15) and c.pending.tolist() == [0.0] * 4


def test_warmup_mask_is_boolean_per_class():
    c = controller(per_class=True, warmup_iters=2)
    ready = c.update(torch.ones(3, 4, dtype=F64), iteration=0)
    assert ready.dtype == torch.bool and ready.tolist() == [False, False, False]
    ready = controller(warmup_iters=2).update(torch.ones(4, dtype=F64), iteration=1)
    assert ready.dtype == torch.bool and ready.shape == ()


def test_non_finite_pool_empties_only_its_class():
    """Class 0's NaN sums are dropped; class 1's pool (1 positive, below min_positives = 2) is kept."""
    c = controller(per_class=True, min_positives=2)
    sums = torch.tensor([[float('nan'), 1.0, 1.0, 1.0], [0.5, 1.0, 0.5, 1.0]], dtype=F64)
    assert c.update(sums, iteration=0).tolist() == [False, False]
    assert c.pending.tolist() == [[0.0] * 4, [0.5, 1.0, 0.5, 1.0]]


def test_values_for_logs():
    c = controller()
    assert c.values('gamma_neg') == 4.0 and type(c.values('gamma_neg')) is float
    c = controller(per_class=True, target=[0.1, 0.2])
    assert c.values('clip') == [0.05, 0.05]


# --------------------------------------------------------------------------------------- saved state
def test_state_messages_are_exact():
    c = controller()
    refused(KeyError, "adaptive state lacks ['clip', 'pending']", c.load_state_dict,
            dict(per_class=False, gamma_neg=4.0))
    refused(ValueError, 'adaptive state has per_class=True, the hook adaptive.per_class=False', c.load_state_dict,
            state(per_class=True))
    refused(TypeError, "adaptive state['clip'] must be a number or a tensor of numbers, got str", c.load_state_dict,
            state(clip='0.1'))
    refused(ValueError, "adaptive state['gamma_neg'] must have shape () (a single value in the global mode), got "
            'shape (2,)', c.load_state_dict, state(gamma_neg=torch.ones(2, dtype=F64)))
    refused(ValueError, "adaptive state['clip'] must have shape (3,) (one per class, as its pending sums in the "
            'per-class mode), got shape ()', controller(per_class=True).load_state_dict,
            state(per_class=True, clip=torch.tensor(0.1, dtype=F64)))
    refused(ValueError, "adaptive state['pending'] must hold finite sums and counts >= 0, got 2 entries that are "
            'not', c.load_state_dict, state(pending=torch.tensor([float('nan'), -1.0, 0.0, 0.5], dtype=F64)))


def test_set_num_classes_message():
    c = controller(per_class=True, target=[0.1, 0.2])
    refused(ValueError, 'the loss has 3 classes, the adaptive state 2 (a per-class target of another length, or a '
            'checkpoint of another model)', c.update, torch.ones(3, 4, dtype=F64), 0)


def test_offending_lists_five_classes():
    c = controller(per_class=True)
    gamma = torch.tensor([4.0] + [-1.0 * i for i in range(1, 8)], dtype=F64)
    refused(ValueError, "adaptive state['gamma_neg'] must be finite and in [0.0, inf], got 7 of 8 classes, e.g. "
            'class 1: -1.0, class 2: -2.0, class 3: -3.0, class 4: -4.0, class 5: -5.0',
            c.load_state_dict, state(per_class=True, num_classes=8, gamma_neg=gamma))


def test_outside_adaptive_bounds_message():
    c = controller(gamma_max=5.0)
    refused(ValueError, "adaptive state['gamma_neg'] lies outside adaptive.gamma_min/gamma_max = [0.0, 5.0], which no "
            'update leaves: 6.0', c.load_state_dict, state(gamma_neg=torch.tensor(6.0, dtype=F64)))


def test_loaded_values_on_the_closed_ends():
    """gamma- = 0 (the loss's lower end), gamma- at gamma_min and at gamma_max are all reachable values."""
    for gamma_min, gamma_max, value in ((0.0, 10.0, 0.0), (1.0, 3.0, 1.0), (1.0, 3.0, 3.0)):
        c = controller(gamma_min=gamma_min, gamma_max=gamma_max)
        c.load_state_dict(state(gamma_neg=torch.tensor(value, dtype=F64)))
        assert float(c.gamma_neg) == value


def test_unadapted_margin_of_one_is_refused():
    """The margin m lies in [0, 1) even where it is not adapted (no adaptive bound checks it)."""
    c = controller(adapt=('gamma_neg', ))
    refused(ValueError, "adaptive state['clip'] must be finite and in [0.0, 1.0), got 1.0", c.load_state_dict,
            state(clip=torch.tensor(1.0, dtype=F64)))


def test_adapted_margin_still_at_its_start_is_accepted():
    """A margin outside [clip_min, clip_max] that no update moved (the configured one) resumes."""
    c = controller(clip=0.5, adapt=('gamma_neg', 'clip'), clip_max=0.2)
    c.load_state_dict(state(clip=torch.tensor(0.5, dtype=F64)))
    assert float(c.clip) == 0.5


def test_per_class_state_into_a_controller_with_per_class_targets():
    c = controller(per_class=True, target=[0.1, 0.2, 0.3])
    c.load_state_dict(state(per_class=True, num_classes=3))
    assert c.num_classes == 3 and c.gamma_neg.tolist() == [4.5] * 3


def test_outside_adaptive_bounds_per_class_names_the_class():
    c = controller(per_class=True, gamma_max=10.0)
    refused(ValueError, "adaptive state['gamma_neg'] lies outside adaptive.gamma_min/gamma_max = [0.0, 10.0], which "
            'no update leaves: 1 of 3 classes, e.g. class 1: 12.0', c.load_state_dict,
            state(per_class=True, gamma_neg=torch.tensor([4.5, 12.0, 4.5], dtype=F64)))
