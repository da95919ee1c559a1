"""Behaviours of ``mmdet_asl.engine`` that mutants of it showed unchecked.

The adaptive asymmetry controller (Eq. 11): the exact text of each refusal of ``check_adaptive_cfg`` and
``load_state_dict``, the open and closed ends of every bound, the types it returns (floats, ints, a tuple of
targets), float64 pooling of float32 sums, fractional (soft-target) slot counts, the global mode summing
per-class sums, warm-up masks, and a saved value still at its starting point. ProbabilityGapHook, driven
through a stand-in runner with fixed probe sums: its argument checks, the losses it finds (a wrapped model
included), where the start values come from and the line that says so, the scalars of each loss, the
per-class log pooled over its interval, the one all-reduce of every loss's sums under DDP. ChannelsLastHook:
a wrapped model, its message, a second run. Every expected
value is written by hand from the numbers the test passes in.
"""
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.dist.dist import _get_reduce_op
from mmengine.model import BaseModel

from mmdet_asl.engine import AsymmetryController, ChannelsLastHook
from mmdet_asl.engine import probability_gap_hook as hook_module
from mmdet_asl.engine.asymmetry_controller import check_adaptive_cfg, probability_gap_from_sums
from mmdet_asl.engine.channels_last_hook import feed_channels_last
from mmdet_asl.engine.probability_gap_hook import ProbabilityGapHook, _short
from mmdet_asl.models import AsymmetricLoss

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


# ------------------------------------------------------------------------------------ ProbabilityGapHook
class Hub:
    def __init__(self):
        self.scalars = {}

    def update_scalar(self, key, value):
        self.scalars.setdefault(key, []).append(value)


class Log:
    def __init__(self):
        self.lines = []

    def info(self, line):
        self.lines.append(line)


class TwoLosses(torch.nn.Module):
    def __init__(self, second=True):
        super().__init__()
        self.loss_cls = AsymmetricLoss(gamma_neg=4.0, clip=0.05)
        self.aux_loss = AsymmetricLoss(gamma_neg=2.0, clip=0.1) if second else None


def fake_runner(model, tmp_path, iteration=0, hooks=None):
    runner = SimpleNamespace(model=model, iter=iteration, message_hub=Hub(), logger=Log(), log_dir=str(tmp_path))
    if hooks is not None:
        runner.hooks = hooks
    return runner


def feed(loss, *sums):
    """Make ``loss.pop_probe_sums()`` return ``sums`` one after the other (the loss's own forward is tested
    elsewhere)."""
    queue = [torch.as_tensor(s, dtype=F64) for s in sums]
    loss.pop_probe_sums = lambda: queue.pop(0) if queue else torch.zeros(4, dtype=F64)


def test_hook_arguments():
    assert ProbabilityGapHook().per_class_interval == 50
    assert ProbabilityGapHook(per_class_interval=1).per_class_interval == 1
    assert ProbabilityGapHook(adaptive=dict(target=0.1)).per_class is False
    assert ProbabilityGapHook(adaptive=dict(target=0.1, per_class=True)).per_class is True
    refused(TypeError, 'prefix must be a str, got int', ProbabilityGapHook, prefix=1)
    for losses in ([], 'loss_cls', ['loss_cls', 2]):
        refused(TypeError, f'losses must be None or a non-empty list of module names, got {losses!r}',
                ProbabilityGapHook, losses=losses)
    for interval in (True, 0, 1.0):
        refused(ValueError, f'per_class_interval must be an integer >= 1, got {interval!r}', ProbabilityGapHook,
                per_class_interval=interval)


def test_find_losses(tmp_path):
    hook = ProbabilityGapHook()
    assert list(hook.find_losses(torch.nn.DataParallel(TwoLosses()))) == ['loss_cls', 'aux_loss']  # unwrapped
    refused(ValueError, "ProbabilityGapHook losses=['nope'] are not AsymmetricLoss modules of the model; it has "
            "['aux_loss', 'loss_cls']", ProbabilityGapHook(losses=['nope']).find_losses, TwoLosses())
    refused(RuntimeError, "ProbabilityGapHook found no mmdet_asl AsymmetricLoss in the model. Use loss "
            "type='AsymmetricLoss' (MMDetection) or 'mmdet.AsymmetricLoss' (MMPretrain); CE is "
            'gamma_pos=gamma_neg=clip=0, focal loss gamma_pos=gamma_neg=gamma, clip=0.', hook.find_losses,
            torch.nn.Linear(1, 1))


def test_two_hooks_on_all_losses_refused(tmp_path):
    first, second = ProbabilityGapHook(), ProbabilityGapHook()
    refused(ValueError, "two ProbabilityGapHooks probe the same loss(es) ['aux_loss', 'loss_cls']: their sums would "
            'be split between them; give each hook its own losses=[...]', first.before_run,
            fake_runner(TwoLosses(), tmp_path, hooks=[first, second]))


def test_before_train_alone_finds_the_losses(tmp_path):
    """A runner without a ``hooks`` list, and before_train without before_run: the losses are found and probed."""
    model = TwoLosses()
    hook = ProbabilityGapHook()
    hook.before_train(fake_runner(model, tmp_path))
    assert model.loss_cls.probe and model.aux_loss.probe and not model.loss_cls.probe_per_class
    assert not model.loss_cls.gamma_neg_dynamic  # probe only: nothing adapted


@pytest.mark.parametrize('adapt,gamma_dynamic,clip_dynamic', [
    (('gamma_neg', ), True, False), (('clip', ), False, True), (('gamma_neg', 'clip'), True, True)])
def test_adapted_values_become_tensor_inputs(tmp_path, adapt, gamma_dynamic, clip_dynamic):
    model = TwoLosses(second=False)
    hook = ProbabilityGapHook(adaptive=dict(target=0.1, adapt=adapt))
    hook.before_run(fake_runner(model, tmp_path))
    hook.before_train(fake_runner(model, tmp_path))
    assert (model.loss_cls.gamma_neg_dynamic, model.loss_cls.clip_dynamic) == (gamma_dynamic, clip_dynamic)


@pytest.mark.parametrize('adapt', [('clip', ), ('gamma_neg', )])
def test_dynamic_flags_are_kept(tmp_path, adapt):
    """A gamma- or m that is already a kernel input (one per class) stays one when only the other is adapted."""
    model = TwoLosses(second=False)
    model.loss_cls.gamma_neg_dynamic = model.loss_cls.clip_dynamic = True
    hook = ProbabilityGapHook(adaptive=dict(target=0.1, adapt=adapt))
    hook.before_train(fake_runner(model, tmp_path))
    assert model.loss_cls.gamma_neg_dynamic and model.loss_cls.clip_dynamic


def saved_state(gamma, clip):
    return dict(per_class=False, gamma_neg=torch.tensor(gamma, dtype=F64), clip=torch.tensor(clip, dtype=F64),
                pending=torch.zeros(4, dtype=F64))


@pytest.mark.parametrize('iteration,init,saved,gamma,clip,source', [
    (1, 'config', {'loss_cls': saved_state(3.0, 0.1)}, 3.0, 0.1, 'the checkpoint (resumed)'),
    (0, 'checkpoint', {'loss_cls': saved_state(3.0, 0.1)}, 3.0, 0.1, "the checkpoint (adaptive.init='checkpoint')"),
    (0, 'checkpoint', {}, 4.0, 0.05, 'the config (the checkpoint has no adaptive state for this loss)'),
    (0, 'config', {'loss_cls': saved_state(3.0, 0.1)}, 4.0, 0.05,
     "the config (the checkpoint's adapted gamma-=3, m=0.1 are not used; adaptive.init='checkpoint' would keep "
     'them)'),
])
def test_start_values_and_their_source(tmp_path, iteration, init, saved, gamma, clip, source):
    model = TwoLosses(second=False)
    hook = ProbabilityGapHook(adaptive=dict(target=0.1, adapt=('clip', ), init=init))
    runner = fake_runner(model, tmp_path, iteration)
    hook.before_run(runner)
    hook.after_load_checkpoint(runner, {'probability_gap': saved})
    hook.before_train(runner)
    assert model.loss_cls.gamma_neg == gamma and model.loss_cls.clip == clip
    assert runner.logger.lines == [f'ProbabilityGapHook: loss_cls starts with gamma-={gamma:.4g}, m={clip:.4g} '
                                   f'from {source}']


def test_probe_only_logs_every_loss(tmp_path):
    """Two losses, no adaptation: each one's p_t+, p_t-, Delta p under its own name; a side without slots
    is not logged."""
    model = TwoLosses()
    hook = ProbabilityGapHook()
    runner = fake_runner(model, tmp_path)
    hook.before_train(runner)
    feed(model.loss_cls, [1.5, 2.0, 2.4, 4.0])
    feed(model.aux_loss, [0.0, 0.0, 1.0, 2.0])
    hook.after_train_iter(runner, 0)
    assert runner.message_hub.scalars == {
        'train/asl_pt_pos/loss_cls': [0.75], 'train/asl_pt_neg/loss_cls': [0.6],
        'train/asl_dp/loss_cls': [pytest.approx(0.15, abs=1e-15)], 'train/asl_pt_neg/aux_loss': [0.5]}


def test_per_class_logs_pool_the_classes_and_the_interval(tmp_path):
    """Per class, the logged scalars are the gap of the sums over the classes; the per-class file gets one
    line per interval (here 3 iterations, written after the third) with the pooled positives and Delta p
    (None where undefined)."""
    model = TwoLosses(second=False)
    hook = ProbabilityGapHook(adaptive=dict(target=0.1, per_class=True, min_positives=100), per_class_interval=3)
    runner = fake_runner(model, tmp_path)
    hook.before_train(runner)
    feed(model.loss_cls, [[0.5, 1.0, 1.0, 2.0], [0.0, 0.0, 3.0, 4.0]], [[1.0, 1.0, 1.5, 2.0], [0.0, 0.0, 0.0, 0.0]],
         [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 2.0]])
    hook.after_train_iter(runner, 0)
    # classes pooled: p_t+ = 0.5 / 1, p_t- = 4 / 6
    assert runner.message_hub.scalars['train/asl_pt_pos'] == [0.5]
    assert runner.message_hub.scalars['train/asl_pt_neg'] == [pytest.approx(4 / 6, abs=1e-15)]
    assert runner.message_hub.scalars['train/asl_gamma_neg'] == [4.0]
    log = tmp_path / 'probability_gap_per_class.jsonl'
    for iteration in (1, 2):
        assert not log.exists()
        runner.iter = iteration
        hook.after_train_iter(runner, iteration)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    # class 0 over the three iterations: p_t+ = 1.5 / 2, p_t- = 2.5 / 4; class 1: no positive
    assert lines == [dict(iter=3, loss='loss_cls', positives=[2.0, 0.0], dp=[pytest.approx(0.125, abs=1e-15), None],
                          gamma_neg=[4.0, 4.0], clip=[0.05, 0.05])]


def test_per_class_mode_refuses_global_sums(tmp_path):
    model = TwoLosses(second=False)
    hook = ProbabilityGapHook(adaptive=dict(target=0.1, per_class=True))
    runner = fake_runner(model, tmp_path)
    hook.before_train(runner)
    feed(model.loss_cls, [1.0, 1.0, 1.0, 1.0])
    refused(RuntimeError, 'ProbabilityGapHook(adaptive.per_class=True): loss_cls.pop_probe_sums() returned (4,), '
            'not per-class (C, 4) sums', hook.after_train_iter, runner, 0)


def test_distributed_sums_are_reduced_per_loss(tmp_path, monkeypatch):
    """Under DDP the sums of every loss go through one all-reduce ('sum'), and come back to their own shapes:
    here a second rank with the same sums doubles them."""
    calls = []

    def all_reduce(data, op='sum', group=None):
        calls.append((tuple(data.shape), _get_reduce_op(op)))
        data.mul_(2)

    monkeypatch.setattr(hook_module.dist, 'is_distributed', lambda: True)
    monkeypatch.setattr(hook_module.dist, 'all_reduce', all_reduce)
    model = TwoLosses()
    hook = ProbabilityGapHook(adaptive=dict(target=0.1, per_class=True))
    hook.before_run(fake_runner(model, tmp_path))
    feed(model.loss_cls, [[0.5, 1.0, 1.0, 2.0], [0.0, 0.0, 3.0, 4.0]])
    feed(model.aux_loss, [[1.0, 2.0, 0.5, 1.0], [0.25, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    sums = hook._reduced_sums()
    assert calls == [((20, ), torch.distributed.ReduceOp.SUM)]
    assert sums['loss_cls'].tolist() == [[1.0, 2.0, 2.0, 4.0], [0.0, 0.0, 6.0, 8.0]]
    assert sums['aux_loss'].tolist() == [[2.0, 4.0, 1.0, 2.0], [0.5, 2.0, 0.0, 0.0], [0.0, 0.0, 2.0, 2.0]]


def test_short_values_in_the_start_line():
    """Four significant digits of the float64 value: 2.0005 is 2.000500000000000167 in float64 (2.001), 2.0004999
    in float32 (2.000); a range per class."""
    assert _short(2.0005) == '2.001'
    assert _short(torch.tensor([1.0, 2.5, 0.5])) == '[0.5 .. 2.5] over 3 classes'


# -------------------------------------------------------------------------------------- ChannelsLastHook
class ImageModel(BaseModel):
    def forward(self, inputs, data_samples=None, mode='tensor'):
        return inputs


def nhwc(output):
    return output['inputs'].is_contiguous(memory_format=torch.channels_last)


def test_channels_last_through_a_model_wrapper():
    model = ImageModel()
    handle = feed_channels_last(torch.nn.DataParallel(model))
    assert nhwc(model.data_preprocessor(dict(inputs=torch.zeros(2, 3, 4, 5)), False))
    handle.remove()
    assert not nhwc(model.data_preprocessor(dict(inputs=torch.zeros(2, 3, 4, 5)), False))


def test_channels_last_message():
    refused(TypeError, 'ChannelsLastHook needs a model with a data_preprocessor module; Linear has NoneType',
            feed_channels_last, torch.nn.Linear(1, 1))
    refused(TypeError, 'ChannelsLastHook needs a model with a data_preprocessor module; SimpleNamespace has dict',
            feed_channels_last, SimpleNamespace(data_preprocessor=dict(type='DetDataPreprocessor')))


def test_channels_last_hook_in_a_second_run():
    """after_run removes the forward hook; the next run's before_run installs it again."""
    model = ImageModel()
    runner = SimpleNamespace(model=model)
    hook = ChannelsLastHook()
    batch = dict(inputs=torch.zeros(2, 3, 4, 5))
    for _ in range(2):
        hook.before_run(runner)
        assert nhwc(model.data_preprocessor(batch, False))
        hook.after_run(runner)
        assert not nhwc(model.data_preprocessor(batch, False))
