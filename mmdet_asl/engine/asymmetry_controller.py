"""The adaptive asymmetry controller (paper Eq. 11), global or per class, for gamma- and the margin m.

Inputs are the probe's sums (paper Eq. 9-10), a tensor whose last axis holds four numbers::

    [sum of p over positive slots, number of positive slots, sum of 1 - p over negative slots,
     number of negative slots]

shaped (4,) for the whole loss or (C, 4) per class. Sums, not means, so that they add across iterations
and all-reduce across ranks; everything here is float64 on the CPU, whatever the model's dtype.

Sign of the update. p_t is p for a positive slot and 1 - p for a negative one, Delta p = p_t+ - p_t-
(Eq. 10). Raising gamma- shrinks the loss and the gradient of every easy negative (the factor p^gamma-
of Eq. 7); raising the margin m does the same by shifting their probability down (p_m = max(p - m, 0),
Eq. 5) and discarding those below m. Either way the negatives are pushed less towards p = 0, the positives
weigh relatively more, p_t- falls, p_t+ rises, and Delta p rises. To drive Delta p towards the target,
both move with the gap's shortfall::

    gamma- <- clamp(gamma- + lam      * (Delta p_target - Delta p), gamma_min, gamma_max)    (Eq. 11)
    m      <- clamp(m      + clip_lam * (Delta p_target - Delta p), clip_min,  clip_max)

(Eq. 11 printed as gamma- + lam (Delta p - Delta p_target) would move gamma- away from the target; the
paper's Table 3, where a higher target ends at a higher gamma-, confirms the sign used here.)

Smoothing: a minimum-count rule. The sums of a class (or of the whole loss) are pooled over iterations
until they hold at least ``min_positives`` positive slots and one negative (without negatives Delta p is
undefined, and nothing moves); then that class is updated
once from the pooled Delta p and its pool is emptied. Why not an exponential moving average: an EMA of a
class absent from many batches keeps repeating its last, stale Delta p, so a rare class would receive as
many updates as a common one from far fewer observations. With the count rule every update rests on at
least ``min_positives`` fresh positives (the standard deviation of p_t+ is at most 0.5 / sqrt(k)), a rare
class is updated as often as its positives allow, and with ``min_positives=1`` the global mode is the
paper's one update per iteration.
"""
import math
from numbers import Integral, Real
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

ADAPTED = ('gamma_neg', 'clip')
INITS = ('config', 'checkpoint')
DEFAULTS = dict(lam=0.01, gamma_min=0.0, gamma_max=10.0, warmup_iters=0, per_class=False, min_positives=None,
                adapt=('gamma_neg', ), clip_lam=0.001, clip_min=0.0, clip_max=0.2, init='config')
MIN_POSITIVES = {False: 1, True: 10}  # default of ``min_positives``: global, per class


def probability_gap_from_sums(sums: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """(p_t+, p_t-, Delta p) of the sums (..., 4), float64; NaN where a side has no slots (Eq. 9-10)."""
    sums = sums.detach().to(device='cpu', dtype=torch.float64)
    nan = torch.tensor(float('nan'), dtype=torch.float64)
    pt_pos = torch.where(sums[..., 1] > 0, sums[..., 0] / sums[..., 1].clamp(min=1e-300), nan)
    pt_neg = torch.where(sums[..., 3] > 0, sums[..., 2] / sums[..., 3].clamp(min=1e-300), nan)
    return pt_pos, pt_neg, pt_pos - pt_neg


def adaptive_gamma_update(gamma_neg: float, gap: float, target: float, lam: float, gamma_min: float,
                          gamma_max: float) -> float:
    """One step of Eq. 11 on a scalar: gamma- + lam (target - Delta p), within bounds; a non-finite
    Delta p (nothing measured) leaves gamma- unchanged."""
    if not math.isfinite(gap):
        return gamma_neg
    return min(max(gamma_neg + lam * (target - gap), gamma_min), gamma_max)


def _real(name: str, value, low=None, high=None, low_open=False, high_open=False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f'{name} must be a real number, got {type(value).__name__} ({value!r})')
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f'{name} must be finite, got {value}')
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f'{name} must be {">" if low_open else ">="} {low}, got {value}')
    if high is not None and (value >= high if high_open else value > high):
        raise ValueError(f'{name} must be {"<" if high_open else "<="} {high}, got {value}')
    return value


def _integer(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f'{name} must be an integer, got {type(value).__name__} ({value!r})')
    if value < low:
        raise ValueError(f'{name} must be >= {low}, got {value}')
    return int(value)


def check_adaptive_cfg(adaptive: dict, name: str = 'adaptive') -> dict:
    """Validate the hook's ``adaptive`` dict and return it with the defaults filled in.

    Raises ``TypeError``/``ValueError`` naming the key (``adaptive.warmup_iters`` ...).
    """
    if not isinstance(adaptive, dict):
        raise TypeError(f'{name} must be a dict or None, got {type(adaptive).__name__}')
    unknown = set(adaptive) - set(DEFAULTS) - {'target'}
    if unknown:
        raise ValueError(f'{name} has unknown keys {sorted(unknown)}; expected {sorted(set(DEFAULTS) | {"target"})}')
    if 'target' not in adaptive:
        raise ValueError(f'{name} needs a target (the Delta p target of Eq. 11), e.g. target=0.1')
    cfg = dict(DEFAULTS, **adaptive)
    if not isinstance(cfg['per_class'], bool):
        raise TypeError(f'{name}.per_class must be True or False, got {cfg["per_class"]!r}')
    target = cfg['target']
    if isinstance(target, (list, tuple)):
        if not cfg['per_class']:
            raise ValueError(f'{name}.target is a sequence (one target per class): set {name}.per_class=True')
        if not target:
            raise ValueError(f'{name}.target is an empty sequence')
        cfg['target'] = tuple(_real(f'{name}.target[{i}]', t, -1, 1) for i, t in enumerate(target))
    else:
        cfg['target'] = _real(f'{name}.target', target, -1, 1)
    cfg['lam'] = _real(f'{name}.lam', cfg['lam'], 0, low_open=True)
    cfg['gamma_min'] = _real(f'{name}.gamma_min', cfg['gamma_min'], 0)
    cfg['gamma_max'] = _real(f'{name}.gamma_max', cfg['gamma_max'], cfg['gamma_min'])
    cfg['warmup_iters'] = _integer(f'{name}.warmup_iters', cfg['warmup_iters'], 0)
    if cfg['min_positives'] is None:
        cfg['min_positives'] = MIN_POSITIVES[cfg['per_class']]
    cfg['min_positives'] = _integer(f'{name}.min_positives', cfg['min_positives'], 1)
    adapt = cfg['adapt']
    if isinstance(adapt, str):
        adapt = (adapt, )
    if not isinstance(adapt, (list, tuple)) or not adapt or any(a not in ADAPTED for a in adapt):
        raise ValueError(f'{name}.adapt must be a non-empty subset of {ADAPTED}, got {cfg["adapt"]!r}')
    cfg['adapt'] = tuple(a for a in ADAPTED if a in adapt)
    cfg['clip_lam'] = _real(f'{name}.clip_lam', cfg['clip_lam'], 0, low_open=True)
    cfg['clip_min'] = _real(f'{name}.clip_min', cfg['clip_min'], 0, 1, high_open=True)
    cfg['clip_max'] = _real(f'{name}.clip_max', cfg['clip_max'], cfg['clip_min'], 1, high_open=True)
    if cfg['init'] not in INITS:
        raise ValueError(f'{name}.init must be one of {INITS}, got {cfg["init"]!r}')
    return cfg


def _values(value: Union[float, Tensor]) -> Tensor:
    return torch.as_tensor(value, dtype=torch.float64).detach().to('cpu').clone()


def _offending(value: Tensor, ok: Tensor) -> str:
    """The values where ``ok`` is False: the value itself (0-dim), or up to 5 ``class: value`` pairs."""
    if value.dim() == 0:
        return f'{float(value)}'
    bad = torch.nonzero(~ok).flatten()
    return f'{bad.numel()} of {value.numel()} classes, e.g. ' + ', '.join(
        f'class {int(i)}: {float(value[i])}' for i in bad[:5])


class AsymmetryController:
    """State and update of the adaptive asymmetry for one loss.

    Args:
        cfg (dict): the output of :func:`check_adaptive_cfg`.
        gamma_neg (float | Tensor): the starting gamma- (a scalar, or (C,) per class).
        clip (float | Tensor): the starting margin m.

    ``gamma_neg`` and ``clip`` are float64 CPU tensors: () globally, (C,) per class once C is known (from
    the first sums, a per-class target or a loaded state).
    """

    def __init__(self, cfg: dict, gamma_neg: Union[float, Tensor], clip: Union[float, Tensor]):
        self.cfg = cfg
        self.gamma_neg = _values(gamma_neg)
        self.clip = _values(clip)
        # The starting values, which a never-updated entry of a saved state still holds (they may lie outside
        # the adaptive bounds: only an update clamps).
        self._start = dict(gamma_neg=self.gamma_neg.clone(), clip=self.clip.clone())
        self.pending = torch.zeros(4, dtype=torch.float64)
        if cfg['per_class'] and isinstance(cfg['target'], tuple):
            self._set_num_classes(len(cfg['target']))

    @property
    def num_classes(self) -> Optional[int]:
        return self.pending.shape[0] if self.pending.dim() == 2 else None

    def _set_num_classes(self, num_classes: int) -> None:
        if self.num_classes is not None:
            if self.num_classes != num_classes:
                raise ValueError(f'the loss has {num_classes} classes, the adaptive state {self.num_classes} '
                                 '(a per-class target of another length, or a checkpoint of another model)')
            return
        self.gamma_neg = self.gamma_neg.expand(num_classes).clone()
        self.clip = self.clip.expand(num_classes).clone()
        self.pending = torch.zeros(num_classes, 4, dtype=torch.float64)

    def target(self) -> Tensor:
        return torch.as_tensor(self.cfg['target'], dtype=torch.float64)

    def update(self, sums: Tensor, iteration: int) -> Tensor:
        """Pool ``sums`` ((4,), or (C, 4) per class) of iteration ``iteration`` (0-based) and update the
        classes whose pool is ready; return the mask of the updated entries."""
        sums = sums.detach().to(device='cpu', dtype=torch.float64)
        if self.cfg['per_class']:
            if sums.dim() != 2 or sums.shape[1] != 4:
                raise ValueError(f'per-class adaptation needs per-class probe sums (C, 4), got {tuple(sums.shape)}')
            self._set_num_classes(sums.shape[0])
        elif sums.dim() == 2:
            sums = sums.sum(0)
        if iteration < self.cfg['warmup_iters']:
            return torch.zeros(self.pending.shape[:-1], dtype=torch.bool)
        self.pending += sums
        _, _, gap = probability_gap_from_sums(self.pending)
        # Delta p is undefined without negative slots (p_t- = 0/0), and NaN sums (unchecked NaN logits) can
        # never become finite again: such a pool updates nothing, and a non-finite one is emptied.
        ready = (self.pending[..., 1] >= self.cfg['min_positives']) & (self.pending[..., 3] > 0) & gap.isfinite()
        self.pending[~self.pending.isfinite().all(-1)] = 0.0
        shortfall = torch.where(ready, self.target() - gap, torch.zeros_like(gap))  # Eq. 11, see the module
        cfg = self.cfg
        if 'gamma_neg' in cfg['adapt']:
            self.gamma_neg = torch.where(
                ready, (self.gamma_neg + cfg['lam'] * shortfall).clamp(cfg['gamma_min'], cfg['gamma_max']),
                self.gamma_neg)
        if 'clip' in cfg['adapt']:
            self.clip = torch.where(
                ready, (self.clip + cfg['clip_lam'] * shortfall).clamp(cfg['clip_min'], cfg['clip_max']), self.clip)
        self.pending[ready] = 0.0
        return ready

    def state_dict(self) -> dict:
        return dict(per_class=self.cfg['per_class'], gamma_neg=self.gamma_neg.clone(), clip=self.clip.clone(),
                    pending=self.pending.clone())

    def load_state_dict(self, state: dict, name: str = 'adaptive state') -> None:
        missing = {'per_class', 'gamma_neg', 'clip', 'pending'} - set(state)
        if missing:
            raise KeyError(f'{name} lacks {sorted(missing)}')
        if bool(state['per_class']) != self.cfg['per_class']:
            raise ValueError(f'{name} has per_class={bool(state["per_class"])}, the hook adaptive.per_class='
                             f'{self.cfg["per_class"]}')
        values = {}
        for key in ('gamma_neg', 'clip', 'pending'):
            try:
                values[key] = _values(state[key])
            except (TypeError, ValueError, RuntimeError) as exc:
                raise TypeError(f"{name}['{key}'] must be a number or a tensor of numbers, got "
                                f'{type(state[key]).__name__}') from exc
        pending, gamma_neg, clip = values['pending'], values['gamma_neg'], values['clip']
        if self.cfg['per_class']:
            if pending.dim() != 2 or pending.shape[1] != 4:
                raise ValueError(f"{name}['pending'] must hold per-class sums (C, 4) (adaptive.per_class=True), "
                                 f'got shape {tuple(pending.shape)}')
            num_classes = pending.shape[0]
            if self.num_classes is not None and num_classes != self.num_classes:
                raise ValueError(f"{name}['pending'] holds {num_classes} classes, the adaptive state "
                                 f'{self.num_classes} (adaptive.target has one entry per class)')
            expected = (num_classes, )
        else:
            if tuple(pending.shape) != (4, ):
                raise ValueError(f"{name}['pending'] must hold the four sums (4,) of the global mode "
                                 f'(adaptive.per_class=False), got shape {tuple(pending.shape)}')
            expected = ()
        for key, value in (('gamma_neg', gamma_neg), ('clip', clip)):
            if tuple(value.shape) != expected:
                raise ValueError(f"{name}['{key}'] must have shape {expected} "
                                 f"({'one per class, as its pending sums' if expected else 'a single value'} in the "
                                 f"{'per-class' if expected else 'global'} mode), got shape {tuple(value.shape)}")
        if not bool(pending.isfinite().all()) or bool((pending < 0).any()):
            raise ValueError(f"{name}['pending'] must hold finite sums and counts >= 0, got "
                             f'{int((~pending.isfinite() | (pending < 0)).sum())} entries that are not')
        self._check_range(name, 'gamma_neg', gamma_neg, 0.0, math.inf, 'gamma_min', 'gamma_max')
        self._check_range(name, 'clip', clip, 0.0, 1.0, 'clip_min', 'clip_max', high_open=True)
        if self.cfg['per_class']:
            self._set_num_classes(pending.shape[0])
        self.gamma_neg, self.clip, self.pending = gamma_neg, clip, pending

    def _check_range(self, name: str, key: str, value: Tensor, low: float, high: float, cfg_low: str,
                     cfg_high: str, high_open: bool = False) -> None:
        """Raise naming ``key`` unless ``value`` is finite and in [low, high] (the loss's own range) and, where
        the key is adapted, in the adaptive bounds or still at the starting value (never updated)."""
        inside = value.isfinite() & (value >= low) & ((value < high) if high_open else (value <= high))
        if not bool(inside.all()):
            interval = f"[{low}, {high}{')' if high_open else ']'}"
            raise ValueError(f"{name}['{key}'] must be finite and in {interval}, got {_offending(value, inside)}")
        if key in self.cfg['adapt']:
            bounded = ((value >= self.cfg[cfg_low]) & (value <= self.cfg[cfg_high])) | (value == self._start[key])
            if not bool(bounded.all()):
                raise ValueError(f"{name}['{key}'] lies outside adaptive.{cfg_low}/{cfg_high} = "
                                 f"[{self.cfg[cfg_low]}, {self.cfg[cfg_high]}], which no update leaves: "
                                 f'{_offending(value, bounded)}')

    def values(self, name: str) -> Union[float, Sequence[float]]:
        """``gamma_neg`` or ``clip`` as a float (global) or a list (per class), for logs."""
        value = getattr(self, name)
        return float(value) if value.dim() == 0 else value.tolist()
