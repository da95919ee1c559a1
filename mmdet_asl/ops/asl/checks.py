"""Argument and input validation for the ASL; every error names the argument.

Configuration values are checked when the loss is built (:func:`check_params`, :func:`check_options`,
:func:`check_real`), tensor layouts at every call (:func:`check_layout`: shapes and dtypes only, no
device synchronisation), tensor values only when validation is on (:func:`check_values`: one host
synchronisation for all of them).
"""
import math
from numbers import Real
from typing import Optional, Tuple

import torch
from torch import Tensor

from .params import FOCUSING_GRAD_MODES, IMPLS, ASLParams, ExecOptions


def check_real(name: str, value, low: float = -math.inf, high: float = math.inf, low_open=False,
               high_open=False) -> float:
    """Return ``value`` as a float if it is a finite real number in the interval, else raise naming it."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f'{name} must be a real number, got {type(value).__name__} ({value!r})')
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f'{name} must be finite, got {value}')
    if value < low or value > high or (low_open and value == low) or (high_open and value == high):
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f'{name} must be in {interval}, got {value}')
    return value


def check_bool(name: str, value) -> bool:
    """``value`` if it is a bool (``bool('no')`` is True: strings are refused)."""
    if not isinstance(value, bool):
        raise TypeError(f'{name} must be True or False, got {type(value).__name__} ({value!r})')
    return value


def check_gamma_neg(value) -> None:
    """gamma-: a real number >= 0, or a 0-dim / (C,) floating tensor (its values are the caller's)."""
    if isinstance(value, Tensor):
        if not value.is_floating_point() or value.dim() > 1:
            raise TypeError(f'gamma_neg as a tensor must be a floating 0-dim or (C,) tensor, got '
                            f'{value.dtype} of shape {tuple(value.shape)}')
        return
    check_real('gamma_neg', value, low=0.0)


def check_per_class_length(name: str, value, num_classes: int) -> None:
    """A (C,) per-class ``value`` (gamma- or the margin m) needs one entry per class of pred: a (2,) gamma-
    on C = 1 would otherwise broadcast the (N, 1) loss to (N, 2). Numbers and 0-dim tensors are shared by
    all classes."""
    if isinstance(value, Tensor) and value.dim() == 1 and value.shape[0] != num_classes:
        raise ValueError(f'{name} per class has {value.shape[0]} entries, but pred (logits) has C = '
                         f'{num_classes} classes: give one value per class, or a single number')


def check_params(params: ASLParams) -> ASLParams:
    """Validate the hyper-parameters; return them with numbers as floats."""
    gamma_pos = check_real('gamma_pos', params.gamma_pos, low=0.0)
    check_gamma_neg(params.gamma_neg)
    gamma_neg = params.gamma_neg if isinstance(params.gamma_neg, Tensor) else float(params.gamma_neg)
    if isinstance(params.clip, bool) or not isinstance(params.clip, Real):
        raise TypeError(f'clip (the probability margin m) must be a real number, got {params.clip!r}')
    clip = check_real('clip (the probability margin m)', params.clip, 0.0, 1.0, high_open=True)
    eps = check_real('eps', params.eps, 0.0, 1.0, high_open=True)
    alpha = None if params.alpha is None else check_real('alpha', params.alpha, 0.0, 1.0)
    if params.focusing_grad not in FOCUSING_GRAD_MODES:
        raise ValueError(f'focusing_grad must be one of {FOCUSING_GRAD_MODES}, got {params.focusing_grad!r}')
    return ASLParams(gamma_pos, gamma_neg, clip, eps, alpha, params.focusing_grad)


def check_options(options: ExecOptions) -> ExecOptions:
    if options.impl not in IMPLS:
        raise ValueError(f'impl must be one of {IMPLS}, got {options.impl!r}')
    check_bool('validate', options.validate)
    return options


def check_avg_factor(avg_factor):
    """avg_factor: None, a real number >= 0, or a one-element tensor (its value is checked with the
    other tensor values, see :func:`check_values`)."""
    if avg_factor is None:
        return None
    if isinstance(avg_factor, Tensor):
        if avg_factor.numel() != 1:
            raise ValueError(f'avg_factor must be a number or a one-element tensor, got shape '
                             f'{tuple(avg_factor.shape)}')
        return avg_factor.reshape(())
    return check_real('avg_factor', avg_factor, low=0.0)


def check_layout(logits, target, weight=None) -> Tuple[Tensor, Optional[Tensor], bool]:
    """Check types and shapes (no synchronisation); return ``(target, weight, is_index)`` with index
    labels as int64 and the weight viewed as (N, 1) or (N, C).

    * ``logits`` (pred): (N, C) floating point.
    * ``target``: (N,) integer class indices in [0, C] (C = background, MMDetection's convention), or
      (N, C) targets in [0, 1] (multi-label; soft targets allowed).
    * ``weight``: (N,), (N, C) or (N * C,), as MMDetection's ``FocalLoss`` accepts.
    """
    if not isinstance(logits, Tensor) or not isinstance(target, Tensor):
        raise TypeError('pred (logits) and target must be torch.Tensor, got '
                        f'{type(logits).__name__} and {type(target).__name__}')
    if not logits.is_floating_point():
        raise TypeError(f'pred (logits) must be a floating point tensor, got {logits.dtype}')
    if logits.dim() != 2:
        raise ValueError(f'pred (logits) must have shape (N, C), got {tuple(logits.shape)}')
    num, num_classes = logits.shape
    if num_classes == 0:
        raise ValueError('pred (logits) has C = 0 classes')
    is_index = target.dim() == 1 and not target.is_floating_point()
    if is_index:
        if target.dtype == torch.bool or target.is_complex():
            raise TypeError(f'target (class indices) must be an integer tensor, got {target.dtype}')
        if target.shape[0] != num:
            raise ValueError(f'target (class indices) must have shape ({num},) to match pred '
                             f'{tuple(logits.shape)}, got {tuple(target.shape)}')
        target = target.long()  # gather/scatter take int64; uint8 and int32 labels are converted
    elif target.dim() == 2:
        if tuple(target.shape) != tuple(logits.shape):
            raise ValueError(f'target (dense) must have the shape of pred {tuple(logits.shape)}, '
                             f'got {tuple(target.shape)}')
    else:
        raise ValueError(f'target must be (N,) integer class indices or (N, C) dense targets matching pred '
                         f'{tuple(logits.shape)}, got {tuple(target.shape)} of {target.dtype}')
    if weight is not None:
        if not isinstance(weight, Tensor):
            raise TypeError(f'weight must be a torch.Tensor or None, got {type(weight).__name__}')
        if weight.dim() == 1 and weight.shape[0] == num:
            weight = weight.view(num, 1)
        elif weight.dim() == 1 and weight.shape[0] == num * num_classes:
            weight = weight.view(num, num_classes)
        elif not (weight.dim() == 2 and tuple(weight.shape) in ((num, num_classes), (num, 1))):
            raise ValueError(f'weight must have shape ({num},), ({num}, {num_classes}) or '
                             f'({num * num_classes},) for pred {tuple(logits.shape)}, got {tuple(weight.shape)}')
    return target, weight, is_index


def check_values(logits: Tensor, target: Tensor, weight: Optional[Tensor], scale: Optional[Tensor],
                 is_index: bool) -> None:
    """Check the tensor values with one host synchronisation: labels in [0, C], dense targets in [0, 1],
    finite logits, finite non-negative weights, a finite non-negative scale (loss_weight / avg_factor)."""
    num_classes = logits.shape[1]
    inf = torch.tensor(math.inf, dtype=torch.float64, device=logits.device)
    empty = logits.numel() == 0

    def low_high(x):
        return torch.stack(torch.aminmax(x.detach())).to(torch.float64) if x.numel() else torch.stack([inf, -inf])

    stats = [low_high(target)]
    # One reduction of the logits, in their own dtype: a finite sum means finite values (a sum that
    # overflows is recounted element by element below before anything is reported).
    stats.append(logits.detach().sum().to(torch.float64).reshape(1) if not empty else inf.new_zeros(1))
    stats.append(low_high(weight) if weight is not None else torch.stack([inf.new_zeros(()), inf.new_zeros(())]))
    stats.append(scale.detach().to(torch.float64).reshape(1) if scale is not None else inf.new_ones(1))
    (t_low, t_high, logit_sum, w_low, w_high, scale_value) = torch.cat(stats).tolist()
    if is_index and not (empty or 0 <= t_low <= t_high <= num_classes):
        bad = target[(target < 0) | (target > num_classes)]
        raise ValueError(f'target (class indices) must be in [0, {num_classes}] ({num_classes} = '
                         f'background), got {bad.numel()} out of range, e.g. {bad[0].item()}')
    if not is_index and target.numel() and not (0 <= t_low and t_high <= 1):
        raise ValueError(f'target (dense) values must be in [0, 1] (soft targets allowed); got min {t_low}, '
                         f'max {t_high}')
    if not math.isfinite(logit_sum):
        count = int((~torch.isfinite(logits)).sum())
        if count:
            raise ValueError(f'pred (logits) contains {count} non-finite value(s) (NaN or inf) out of '
                             f'{logits.numel()}')
    if weight is not None and weight.numel() and not (0 <= w_low and math.isfinite(w_high)):
        raise ValueError(f'weight must be finite and >= 0, got min {w_low}, max {w_high}')
    if not (math.isfinite(scale_value) and scale_value >= 0):
        raise ValueError('avg_factor must be finite and >= 0 (the loss is scaled by loss_weight / avg_factor), '
                         f'got a scale of {scale_value}')


def check_loss_params(gamma_pos, gamma_neg, clip, eps, alpha=None, focusing_grad='full') -> ASLParams:
    """:func:`check_params` with the hyper-parameters as arguments."""
    return check_params(ASLParams(gamma_pos, gamma_neg, clip, eps, alpha, focusing_grad))
