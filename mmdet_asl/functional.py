"""The Asymmetric Loss (ASL), paper Eq. 7, as a torch-only functional core.

Ben-Baruch, Ridnik et al., "Asymmetric Loss For Multi-Label Classification", ICCV 2021.

Per label, with p = sigmoid(z) and the shifted probability p_m = max(p - m, 0) (Eq. 5)::

    L+ = (1 - p)^gamma_pos * log(p)                               (Eq. 7, positives)
    L- = p_m^gamma_neg * log(1 - p_m)                             (Eq. 7, negatives)
    loss = -[a_pos * y * L+ + a_neg * (1 - y) * L-]

with a_pos = alpha, a_neg = 1 - alpha when the static weighting ``alpha`` is given (the paper's
"FL + linear weighting" baseline, and MMDetection's FocalLoss alpha), else a_pos = a_neg = 1.

The loss is *linear* in the target y, so soft targets y in [0, 1] interpolate between the positive and
the negative term. (The official repository's ``pt``/``w`` form is only right for hard 0/1 targets.)

This module imports nothing from OpenMMLab. :class:`AsymmetricLossFunction` computes the loss and its
analytic gradient (Eq. 8 for negatives and its positive-label counterpart) in one pass, without keeping a
graph of intermediates: it saves one (N, C) tensor, the element-wise gradient, which backward hands over
without a copy when the loss's scale (loss_weight / avg_factor) was folded in. The kernel runs through
``torch.compile`` when it is available (one fused loop) and falls back to the same code run eagerly
otherwise (over cache-sized row blocks on the CPU); the two differ only in how they compute the sigmoid
parts (see ``_sigmoid_parts``: shared exponentials when fused, single-op sigmoids when eager).
"""
import functools
import math
import os
import warnings
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

FOCUSING_GRAD_MODES = ('full', 'detached')


# --------------------------------------------------------------------------------------------------------
# Argument checks. Config errors are raised when the loss is built (see ``check_loss_params``), data
# errors at the call (see ``check_inputs``); messages name the argument.
# --------------------------------------------------------------------------------------------------------
def check_loss_params(gamma_pos, gamma_neg, clip, eps, alpha, focusing_grad) -> None:
    """Validate the loss hyper-parameters; raise ``ValueError``/``TypeError`` naming the argument."""
    for name, value in (('gamma_pos', gamma_pos), ('gamma_neg', gamma_neg), ('clip', clip), ('eps', eps)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f'{name} must be a real number, got {type(value).__name__} ({value!r})')
        if not math.isfinite(value):
            raise ValueError(f'{name} must be finite, got {value}')
    if gamma_pos < 0:
        raise ValueError(f'gamma_pos must be >= 0, got {gamma_pos}')
    if gamma_neg < 0:
        raise ValueError(f'gamma_neg must be >= 0, got {gamma_neg}')
    if not 0 <= clip < 1:
        raise ValueError(f'clip (the probability margin m) must be in [0, 1), got {clip}')
    if eps <= 0 or eps >= 1:
        raise ValueError(f'eps must be in (0, 1), got {eps}')
    if alpha is not None:
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
            raise TypeError(f'alpha must be None or a real number, got {type(alpha).__name__}')
        if not 0 <= alpha <= 1:
            raise ValueError(f'alpha must be None or in [0, 1], got {alpha}')
    if focusing_grad not in FOCUSING_GRAD_MODES:
        raise ValueError(f'focusing_grad must be one of {FOCUSING_GRAD_MODES}, got {focusing_grad!r}')


def check_inputs(logits: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                 check_finite: bool = True) -> Tuple[Tensor, bool]:
    """Validate logits/targets/weight and return ``(weight as (N, C), (N, 1) or None, is_index)``.

    ``check_finite=False`` leaves the finiteness of the logits to the caller (the compiled kernel counts
    the non-finite logits in its own pass, see ``raise_if_nonfinite``).

    * ``logits``: (N, C) floating point, finite.
    * ``target``: (N,) integer class indices in [0, C] (C = background, MMDetection's convention), or
      (N, C) floating point in [0, 1] (multi-label, soft targets allowed).
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
    if target.dim() == 1 and not target.is_floating_point():
        is_index = True
        if target.shape[0] != num:
            raise ValueError(f'target (class indices) must have shape ({num},) to match pred '
                             f'{tuple(logits.shape)}, got {tuple(target.shape)}')
        if target.dtype == torch.bool:
            raise TypeError('target (class indices) must be an integer tensor, got torch.bool')
        low, high = torch.stack(torch.aminmax(target)).tolist() if num else (0, 0)  # one pass, one sync
        if not 0 <= low <= high <= num_classes:
            bad = target[(target < 0) | (target > num_classes)]
            raise ValueError(f'target (class indices) must be in [0, {num_classes}] ({num_classes} = '
                             f'background), got {bad.numel()} out of range, e.g. {bad[0].item()}')
    elif target.dim() == 2:
        is_index = False
        if tuple(target.shape) != tuple(logits.shape):
            raise ValueError(f'target (dense) must have the shape of pred {tuple(logits.shape)}, '
                             f'got {tuple(target.shape)}')
        if not target.is_floating_point():
            target = target.to(logits.dtype)  # 0/1 integer matrices are fine; checked below.
        if target.numel() and not bool(((target >= 0) & (target <= 1)).all()):
            raise ValueError('target (dense) values must be in [0, 1] (soft targets allowed); got '
                             f'min {target.min().item()}, max {target.max().item()}')
    else:
        raise ValueError(f'target must be (N,) integer class indices or (N, C) dense targets matching pred '
                         f'{tuple(logits.shape)}, got {tuple(target.shape)} of {target.dtype}')
    # One reduction, no (N, C) temporary: a finite sum means finite logits; only a non-finite sum (NaN/inf,
    # or an overflow of huge finite logits) pays for the element-wise check.
    if check_finite and logits.numel() and not bool(torch.isfinite(logits.sum())):
        raise_if_nonfinite(int((~torch.isfinite(logits)).sum()), logits.numel())
    if weight is not None:
        if not isinstance(weight, Tensor):
            raise TypeError(f'weight must be a torch.Tensor or None, got {type(weight).__name__}')
        if weight.dim() == 1 and weight.shape[0] == num:
            weight = weight.view(num, 1)
        elif weight.dim() == 1 and weight.shape[0] == num * num_classes:
            weight = weight.view(num, num_classes)
        elif weight.dim() == 2 and tuple(weight.shape) in ((num, num_classes), (num, 1)):
            pass
        else:
            raise ValueError(f'weight must have shape ({num},), ({num}, {num_classes}) or '
                             f'({num * num_classes},) for pred {tuple(logits.shape)}, got {tuple(weight.shape)}')
    return weight, is_index


def raise_if_nonfinite(count: int, total: int) -> None:
    if count:
        raise ValueError(f'pred (logits) contains {count} non-finite value(s) (NaN or inf) out of {total}')


# --------------------------------------------------------------------------------------------------------
# The element-wise kernel: loss and analytic gradient in one pass over the logits.
# ``cfg`` holds the choices that are constant for a loss (static under torch.compile, which specialises
# on them: pow(x, 4.0) becomes two multiplications, clip and eps become immediates). Values that change
# from call to call travel as tensors and recompile nothing: an adaptive gamma_neg, and the scale.
# --------------------------------------------------------------------------------------------------------
class KernelConfig(NamedTuple):
    gamma_pos: float
    gamma_neg: Optional[float]  # None: the adaptive 0-dim tensor passed to the kernel is used
    clip: float          # m
    log_eps: float
    alpha: Optional[float]
    full_grad: bool
    is_index: bool
    reduce: bool
    need_grad: bool
    probe: bool          # also return the probability-gap statistics (see ``probability_stats``)
    dtype: torch.dtype   # compute dtype: float32, or float64 for float64 logits
    fused: bool = False  # the kernel runs through torch.compile (picks the formulation that fuses best)
    count_nonfinite: bool = False  # also count the non-finite logits (the check, folded into the pass)


def _kernel_config(gamma_pos, gamma_neg, clip, eps, alpha, focusing_grad, is_index, reduce, need_grad, probe,
                   dtype) -> KernelConfig:
    return KernelConfig(float(gamma_pos), None if isinstance(gamma_neg, Tensor) else float(gamma_neg),
                        float(clip), math.log(eps), None if alpha is None else float(alpha),
                        focusing_grad == 'full', is_index, bool(reduce), bool(need_grad), bool(probe), dtype)


class _SigmoidParts(NamedTuple):
    """p = sigmoid(z) and q = 1 - p = sigmoid(-z), each computed on its own (1 - p would cancel where p is
    near 1), and the logarithms the loss takes (None where not asked for)."""
    p: Tensor
    q: Tensor
    log_p: Optional[Tensor]   # logsigmoid(z), not yet floored at log(eps)
    log_q: Optional[Tensor]   # logsigmoid(-z) = log(1 - p), m = 0 only (m > 0 takes log(1 - p_m))
    p_wide: Optional[Tensor]  # p in float64, m > 0 only: p_m = p - m is taken from it (see _negative_terms)


def _sigmoid_parts(z: Tensor, cfg: KernelConfig, need_log_p: bool) -> _SigmoidParts:
    """The probabilities and logarithms both halves of Eq. 7 share, computed once.

    Compiled (cfg.fused), the parts share one exponential and one log1p: separate sigmoid/logsigmoid calls
    cost one exponential each, which inductor does not merge (tools/benchmark_kernel_variants.py measured
    the loop 13.0 ms with three against 8.9 with one). Eager, every op is a pass over memory, so the
    single-op sigmoid and logsigmoid are cheaper.
    """
    if cfg.clip > 0:
        # In float32, p - m cancels near the margin, and p_m^g- multiplies p_m's relative error by g-:
        # p is computed in float64 and rounded once, p_m from the float64 p (1e-6 relative agreement with
        # the float64 formula down to the kink; float32 p was measured 6.6e-6 off, see
        # tools/benchmark_kernel_variants.py).
        if cfg.fused:
            t = torch.exp(-torch.clamp(z.to(torch.float64), min=-700.0))   # exp(-z)
            p_wide = 1.0 / (1.0 + t)
            q = (t * p_wide).to(z.dtype)
        else:
            p_wide = torch.sigmoid(z.to(torch.float64))
            q = torch.sigmoid(-z)
        log_p = None
        if need_log_p:
            if cfg.fused:
                e = torch.where(z >= 0, t, 1.0 / t).to(z.dtype)              # exp(-|z|)
                log_p = torch.clamp(z, max=0.0) - torch.log1p(e)
            else:
                log_p = F.logsigmoid(z)
        return _SigmoidParts(p_wide.to(z.dtype), q, log_p, None, p_wide)
    if cfg.fused:
        # One exponential t = exp(-z) serves all four. p = 1/(1 + t) in this form, and q = t/(1 + t) for
        # z >= 0 (q <= 1/2) or 1 - p for z < 0 (q > 1/2: no cancellation); exp(-|z|) is t or 1/t, and
        # log p = min(z, 0) - log1p(exp(-|z|)), log q = -max(z, 0) - log1p(exp(-|z|)). Where t overflows
        # (z < -88), p = 0, q = 1 and exp(-|z|) = 0 exactly. Against the float64 formula at gamma = 4 the
        # negative term measured 6.6e-7 (relative), and 9.9e-7 with the shorter p = exp(-|z|)/(1 + exp(-|z|))
        # (tools/benchmark_kernel_variants.py).
        t = torch.exp(-z)
        p = 1.0 / (1.0 + t)
        nonneg = z >= 0
        softplus = torch.log1p(torch.where(nonneg, t, 1.0 / t))
        log_p = torch.clamp(z, max=0.0) - softplus if need_log_p else None
        return _SigmoidParts(p, torch.where(nonneg, t / (1.0 + t), 1.0 - p), log_p,
                             -torch.clamp(z, min=0.0) - softplus, None)
    return _SigmoidParts(torch.sigmoid(z), torch.sigmoid(-z), F.logsigmoid(z) if need_log_p else None,
                         F.logsigmoid(-z), None)


def _pow(x: Tensor, exponent) -> Tensor:
    """x ** exponent; a whole-number float exponent up to 16 (the usual gammas: 1, 2, 4) by repeated
    squaring. Eager, aten's pow calls powf per element for exponents other than 2 and 3 (measured: 13.5 of
    87 ms of an eager step at (40 000, 80) with gamma- = 4); compiled, inductor emits the same products.
    The result may be ``x`` itself (exponent 1): callers do not modify it in place."""
    if isinstance(exponent, float) and exponent.is_integer() and 0 <= exponent <= 16:
        power, result = int(exponent), None
        while power:
            if power & 1:
                result = x if result is None else result * x
            power >>= 1
            if power:
                x = x * x
        return torch.ones_like(x) if result is None else result
    return torch.pow(x, exponent)


def _positive_terms(parts: _SigmoidParts, gamma_pos, cfg: KernelConfig):
    """-L+ (Eq. 7) and its derivative, element-wise, for the slots treated as positives.

    loss+ = -q^g+ log p with q = 1 - p, dq/dz = -pq, d(log p)/dz = q:
      full:      d/dz = q^g+ (g+ p log p - q)
      detached:  d/dz = -q^(g+ + 1)                  (the weight q^g+ held constant)
    log p is floored at log(eps); where the floor is active its own derivative is 0.
    """
    q = parts.q
    log_p = torch.clamp(parts.log_p, min=cfg.log_eps)
    q_pow = _pow(q, gamma_pos)
    loss = -(q_pow * log_p)
    if not cfg.need_grad:
        return loss, None
    grad = q * (parts.log_p > cfg.log_eps)           # q is finite: the product with the mask zeroes it
    if cfg.full_grad:
        grad = grad - (parts.p * log_p).mul_(gamma_pos)
    return loss, grad.mul_(q_pow).neg_()


def _negative_terms(parts: _SigmoidParts, gamma_neg, cfg: KernelConfig):
    """-L- (Eq. 7) and its derivative, element-wise.

    loss- = -p_m^g- log(1 - p_m), p_m = max(p - m, 0) (Eq. 5), dp_m/dz = pq above the margin, 0 below:
      full (Eq. 8): d/dz = p_m^g- [1/(1 - p_m) - g- log(1 - p_m)/p_m] pq
      detached:     d/dz = p_m^g- pq/(1 - p_m)
    """
    clip = cfg.clip
    p, q = parts.p, parts.q
    if clip > 0:
        p_m = torch.clamp(parts.p_wide - clip, min=0.0).to(p.dtype)    # rounded once, from float64 p
        log_1m_pm = torch.log1p(-p_m)                                  # 1 - p_m >= m: no cancellation
        if math.log(clip) < cfg.log_eps:
            log_1m_pm = torch.clamp(log_1m_pm, min=cfg.log_eps)
        pm_pow = _pow(p_m, gamma_neg)
        loss = -(pm_pow * log_1m_pm)
        if not cfg.need_grad:
            return loss, None
        pq = p * q
        # d/dz = pm_pow * [pq/(1 - p_m) - g- pq log(1 - p_m)/p_m], 1 - p_m = q + m exactly
        grad = pq / (q + clip)
        if math.log(clip) < cfg.log_eps:
            grad = grad.mul_(log_1m_pm > cfg.log_eps)
        if cfg.full_grad:
            # log(1 - p_m)/p_m -> -1 as p_m -> 0; the clamp only guards p_m == 0 (masked below)
            grad = grad.sub_((log_1m_pm / torch.clamp(p_m, min=1e-30) * pq).mul_(gamma_neg))
        grad = grad.mul_(pm_pow).mul_(p_m > 0)      # every factor is finite: the product with 0 is 0
        return loss, grad
    # m = 0: p_m = p, 1 - p_m = q, log(1 - p) = logsigmoid(-z) (exact), floored at log(eps).
    log_q = torch.clamp(parts.log_q, min=cfg.log_eps)
    pm_pow = _pow(p, gamma_neg)
    loss = -(pm_pow * log_q)
    if not cfg.need_grad:
        return loss, None
    # pq/(1 - p_m) = p and pq/p_m = q: d/dz = p^g- [p - g- q log q]
    grad = p * (parts.log_q > cfg.log_eps)
    if cfg.full_grad:
        grad = grad - (q * log_q).mul_(gamma_neg)  # gamma_neg: a float or the adaptive 0-dim tensor
    return loss, grad.mul_(pm_pow)


def _alpha_factors(cfg: KernelConfig) -> Tuple[float, float]:
    """(a_pos, a_neg): the static weighting alpha, 1 - alpha, or (1, 1) without it."""
    return (1.0, 1.0) if cfg.alpha is None else (cfg.alpha, 1.0 - cfg.alpha)


def _times(x: Optional[Tensor], *factors, inplace: bool = False):
    """x times each factor that is not None (or 1.0); None stays None. ``inplace`` for a tensor the kernel
    owns (eager, each out-of-place product is one more (N, C) allocation and pass)."""
    if x is None:
        return None
    for factor in factors:
        if factor is not None and not (isinstance(factor, float) and factor == 1.0):
            x = x.mul_(factor) if inplace else x * factor
    return x


def _sum64(x: Tensor, cfg: KernelConfig) -> Tensor:
    """The sum of x as float64. Compiled, the accumulator itself is float64: a float32 one was measured
    5e-4 (relative) off the exact sum over 27M terms. Eager, torch.sum's cascade summation is accurate in
    float32, and a float64 reduction would cost a converted copy."""
    return x.sum(dtype=torch.float64) if cfg.fused else x.sum().to(torch.float64)


def _loss_and_grad_kernel(z: Tensor, target: Tensor, weight: Optional[Tensor], gamma_neg: Optional[Tensor],
                          scale: Optional[Tensor], cfg: KernelConfig):
    """``_loss_and_grad_terms``'s (loss, grad, stats), and the number of non-finite logits as a 0-dim
    tensor when cfg.count_nonfinite (else None): counted in the same pass, not in a separate one."""
    nonfinite = torch.logical_not(torch.isfinite(z)).sum() if cfg.count_nonfinite else None
    return _loss_and_grad_terms(z, target, weight, gamma_neg, scale, cfg) + (nonfinite, )


def _loss_and_grad_terms(z: Tensor, target: Tensor, weight: Optional[Tensor], gamma_neg: Optional[Tensor],
                         scale: Optional[Tensor], cfg: KernelConfig):
    """Return (loss, dloss/dz, stats): loss summed (cfg.reduce) or element-wise, the gradient element-wise
    (``None`` unless cfg.need_grad), both weighted by ``weight`` and multiplied by ``scale``; ``stats``
    (``None`` unless cfg.probe) are the probability-gap sums of ``probability_stats``.

    Every slot is first treated as a negative (dense). Index labels have at most one positive per row: the
    positive term, and the negative term it replaces, are computed on the N gathered logits only, and
    written over their slot (scatter) or added as a correction to the sum. Dense targets combine both
    dense terms linearly in y (soft targets interpolate). Written so that torch.compile fuses the dense
    part into one pass that reads z and writes only the gradient; weights and scale are applied before
    the scatter so that no second (N, C) pass follows it.
    """
    z = z.to(cfg.dtype)
    gamma_pos = cfg.gamma_pos
    gamma_neg = cfg.gamma_neg if cfg.gamma_neg is not None else gamma_neg
    a_pos, a_neg = _alpha_factors(cfg)
    w = None if weight is None else weight.to(z.dtype)
    parts = _sigmoid_parts(z, cfg, need_log_p=not cfg.is_index)
    loss_neg, grad_neg = _negative_terms(parts, gamma_neg, cfg)
    if cfg.is_index:
        return _index_label_terms(z, target, w, loss_neg, grad_neg, parts, gamma_pos, gamma_neg, scale, cfg)
    y = target.to(z.dtype)
    loss_pos, grad_pos = _positive_terms(parts, gamma_pos, cfg)
    # lerp(neg, pos, y) = y*pos + (1-y)*neg, exact at y = 0 and y = 1 (no neg + y*(pos - neg) cancellation)
    loss = torch.lerp(_times(loss_neg, a_neg), _times(loss_pos, a_pos), y)
    grad = torch.lerp(_times(grad_neg, a_neg), _times(grad_pos, a_pos), y) if cfg.need_grad else None
    loss = _times(loss, w)
    grad = _times(grad, w, scale, inplace=True)
    if cfg.reduce:
        loss = _times(_sum64(loss, cfg), scale).to(cfg.dtype)
    else:
        loss = _times(loss, scale)
    stats = None
    if cfg.probe:
        counted = None if w is None else (w > 0).to(z.dtype)
        counted_pos = _times(y, counted)
        counted_neg = _times(1.0 - y, counted)
        stats = torch.stack([_sum64(counted_pos * parts.p, cfg), _sum64(counted_pos, cfg),
                             _sum64(counted_neg * parts.q, cfg), _sum64(counted_neg, cfg)])
    return loss, grad, stats


def _index_label_terms(z, target, w, loss_neg, grad_neg, parts, gamma_pos, gamma_neg, scale, cfg: KernelConfig):
    """The index-label half of ``_loss_and_grad_terms`` (same return values)."""
    a_pos, a_neg = _alpha_factors(cfg)
    num_classes = z.shape[1]
    foreground = (target < num_classes).unsqueeze(1)     # background (= C) rows: all negative, as in FocalLoss
    cls = torch.clamp(target, max=num_classes - 1).unsqueeze(1)
    # (N, 1): the labelled class's logit, in float64: N values only, and the positive term, which the
    # dense pass does not compute, is then as accurate as can be.
    z_at = z.gather(1, cls).to(torch.float64)
    parts_at = _sigmoid_parts(z_at, cfg, need_log_p=True)
    loss_pos, grad_pos = _positive_terms(parts_at, gamma_pos, cfg)
    loss_neg_at, grad_neg_at = _negative_terms(parts_at, gamma_neg, cfg)
    w_at = None if w is None else (w if w.shape[1] == 1 else w.gather(1, cls))
    loss_neg = _times(loss_neg, a_neg, w, inplace=True)
    loss_pos, loss_neg_at = _times(loss_pos, a_pos, w_at), _times(loss_neg_at, a_neg, w_at)
    if cfg.reduce:
        correction = torch.where(foreground, loss_pos - loss_neg_at, torch.zeros_like(loss_pos))
        loss = _times(_sum64(loss_neg, cfg) + _sum64(correction, cfg), scale).to(cfg.dtype)
    else:
        at = _times(torch.where(foreground, loss_pos, loss_neg_at), scale).to(loss_neg.dtype)
        loss = _times(loss_neg, scale, inplace=True).scatter_(1, cls, at)
    grad = None
    if cfg.need_grad:
        at = torch.where(foreground, _times(grad_pos, a_pos), _times(grad_neg_at, a_neg))
        grad = _times(grad_neg, a_neg, w, scale, inplace=True).scatter_(1, cls,
                                                                       _times(at, w_at, scale).to(grad_neg.dtype))
    stats = None
    if cfg.probe:
        counted = None if w is None else (w > 0).to(z.dtype)
        counted_at = foreground.to(z.dtype) if w is None else (foreground & (w_at > 0)).to(z.dtype)
        n_pos = _sum64(counted_at, cfg)
        n_slots = torch.tensor(float(z.numel()), dtype=torch.float64, device=z.device) if counted is None \
            else _sum64(counted.expand_as(z), cfg)
        neg_q = _sum64(_times(parts.q, counted), cfg) - _sum64(counted_at * parts_at.q, cfg)
        stats = torch.stack([_sum64(counted_at * parts_at.p, cfg), n_pos, neg_q, n_slots - n_pos])
    return loss, grad, stats


def _target_matrix(target: Tensor, num_classes: int, is_index: bool, dtype) -> Tensor:
    if is_index:
        # Background (= C) matches no column: an all-negative row, as in MMDetection's FocalLoss.
        classes = torch.arange(num_classes, device=target.device)
        return (target.unsqueeze(1) == classes).to(dtype)
    return target.to(dtype)


# --------------------------------------------------------------------------------------------------------
# Kernel dispatch: torch.compile fuses the kernel into one loop; eager PyTorch is the fallback.
# --------------------------------------------------------------------------------------------------------
_compiled_kernel = None
_compile_failed = False
# Inductor materialises an intermediate as an (N, C) buffer once its expression exceeds 30 ops or 4 reads;
# this kernel's are longer, and a materialised intermediate costs a round trip to memory (measured: a
# longer p_m formulation was split into four loops with 3 extra (N, C) buffers under the defaults).
_INDUCTOR_OPTIONS = {'realize_opcount_threshold': 1000, 'realize_reads_threshold': 100}


def compile_enabled() -> bool:
    """Whether the kernel goes through torch.compile: ``MMDET_ASL_COMPILE=0`` turns it off."""
    return os.environ.get('MMDET_ASL_COMPILE', '1').lower() not in ('0', 'false', 'off', 'no', '')


def _as_tensor(value, like: Tensor, dtype) -> Optional[Tensor]:
    if value is None or isinstance(value, Tensor):
        return value
    return torch.tensor(float(value), dtype=dtype, device=like.device)


# Eager, every op is a pass over memory with a fresh (N, C) temporary; on the CPU the kernel runs over row
# blocks of about this many elements (1 MiB in float32), so that its ~10 live temporaries stay in cache and
# below the allocator's mmap threshold (larger ones are page-faulted in afresh at every call).
_EAGER_BLOCK_ELEMENTS = 1 << 18


def _eager_kernel(z, target, weight, gamma_neg, scale, cfg):
    num, num_classes = z.shape
    rows = max(1, _EAGER_BLOCK_ELEMENTS // num_classes)
    if num <= rows or z.device.type != 'cpu':
        return _loss_and_grad_kernel(z, target, weight, gamma_neg, scale, cfg)
    # Results are written into full-size outputs block by block: peak memory stays one (N, C) gradient.
    grad = torch.empty(num, num_classes, dtype=cfg.dtype, device=z.device) if cfg.need_grad else None
    loss = None if cfg.reduce else torch.empty(num, num_classes, dtype=cfg.dtype, device=z.device)
    sums, stats, nonfinite = [], [], []
    for start in range(0, num, rows):
        block = slice(start, start + rows)
        block_loss, block_grad, block_stats, block_nonfinite = _loss_and_grad_kernel(
            z[block], target[block], None if weight is None else weight[block], gamma_neg, scale, cfg)
        if cfg.reduce:
            sums.append(block_loss)
        else:
            loss[block] = block_loss
        if cfg.need_grad:
            grad[block] = block_grad
        stats.append(block_stats)
        nonfinite.append(block_nonfinite)
    if cfg.reduce:
        loss = torch.stack(sums).to(torch.float64).sum().to(cfg.dtype)
    return (loss, grad, torch.stack(stats).sum(0) if cfg.probe else None,
            torch.stack(nonfinite).sum() if cfg.count_nonfinite else None)


@functools.lru_cache(maxsize=None)
def _dynamo_settings() -> dict:
    """Dynamo settings for the kernel's compilation, limited to the knobs this torch has (older releases
    specialise floats anyway, and call the recompile limit ``cache_size_limit``). 64 recompiles: one per
    loss configuration in a process (tests sweep many)."""
    config = torch._dynamo.config
    settings = {'specialize_float': True} if hasattr(config, 'specialize_float') else {}
    settings['recompile_limit' if hasattr(config, 'recompile_limit') else 'cache_size_limit'] = 64
    return settings


def _run_kernel(*args):
    global _compiled_kernel, _compile_failed
    if _compile_failed or not compile_enabled():
        return _eager_kernel(*args)
    if _compiled_kernel is None:
        # fullgraph: a graph break would hand Python floats to the resumed frames (the stale-float problem
        # below); it raises instead, and the eager kernel takes over.
        _compiled_kernel = torch.compile(_loss_and_grad_kernel, dynamic=True, fullgraph=True,
                                         options=_INDUCTOR_OPTIONS)
    z, target, weight, gamma_neg, scale, cfg = args
    # A value that changes between calls goes in as a 0-dim tensor, never as a Python float argument: such
    # a float was measured to be reused stale by the compiled graph after it changed (torch 2.9.1,
    # dynamic=True), giving wrong losses. Constants sit in cfg, whose fields dynamo guards by value.
    compiled_args = (z, target, weight, gamma_neg, _as_tensor(scale, z, cfg.dtype), cfg._replace(fused=True))
    try:
        # specialize_float: cfg's floats become constants of the graph, guarded by value (a change
        # recompiles). Without it, dynamo (torch 2.9.1, dynamic=True) turns them into graph inputs and was
        # measured to compute with a previous call's gamma.
        with torch._dynamo.config.patch(**_dynamo_settings()):
            return _compiled_kernel(*compiled_args)
    except Exception as exc:  # noqa: BLE001 -- any compiler failure falls back to the identical eager kernel
        _compile_failed = True
        warnings.warn(f'mmdet_asl: torch.compile failed ({type(exc).__name__}: {exc}); using the eager '
                      'kernel from now on. Set MMDET_ASL_COMPILE=0 to skip compiling.')
        return _eager_kernel(*args)


class AsymmetricLossFunction(torch.autograd.Function):
    """Fused ASL: one pass computes Eq. 7 and its analytic gradient.

    What backward needs is kept as one tensor: the element-wise gradient dloss/dz (N, C) in the compute
    dtype, produced in the same pass as the loss. Autograd of the formula would keep a chain of about a
    dozen (N, C) intermediates; recomputing from the logits in backward would cost a second pass over
    the transcendental functions. Computation runs in float32 at least (float64 stays), outside autocast.
    """

    @staticmethod
    def forward(ctx, logits, target, weight, gamma_neg, scale, cfg):
        with torch.autocast(device_type=logits.device.type, enabled=False):
            loss, grad, stats, nonfinite = _run_kernel(logits, target, weight, gamma_neg, scale, cfg)
        if nonfinite is not None:
            raise_if_nonfinite(int(nonfinite), logits.numel())
        ctx.logits_dtype = logits.dtype
        if grad is not None:
            ctx.save_for_backward(grad)
        if stats is None:
            return loss
        ctx.mark_non_differentiable(stats)
        return loss, stats

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, *unused):
        grad, = ctx.saved_tensors
        # A summed loss that reaches backward unscaled (grad_out == 1: the scale was folded into the
        # kernel) hands over the saved gradient itself, with no (N, C) multiply and no new allocation.
        # Autograd's AccumulateGrad copies it if the graph is retained, so the saved tensor stays intact.
        if grad_out.dim() == 0 and grad_out.device.type == 'cpu' and grad.dtype == ctx.logits_dtype \
                and grad_out.item() == 1.0:
            return grad, None, None, None, None, None
        return (grad * grad_out).to(ctx.logits_dtype), None, None, None, None, None


def _compute_dtype(logits: Tensor):
    return torch.float64 if logits.dtype == torch.float64 else torch.float32


def asymmetric_loss(logits: Tensor,
                    target: Tensor,
                    weight: Optional[Tensor] = None,
                    gamma_pos: float = 0.0,
                    gamma_neg: float = 4.0,
                    clip: float = 0.05,
                    eps: float = 1e-8,
                    alpha: Optional[float] = None,
                    focusing_grad: str = 'full',
                    reduce: bool = False,
                    check: bool = True,
                    return_stats: bool = False,
                    scale=None):
    """Asymmetric loss (Eq. 7) with the analytic gradient.

    Args:
        logits: (N, C) logits z, any floating dtype.
        target: (N,) integer labels in [0, C] with C = background, or (N, C) targets in [0, 1].
        weight: optional (N,), (N, C) or (N*C,) element weights (no gradient flows to it).
        gamma_pos, gamma_neg: focusing exponents gamma+ and gamma- (>= 0). ``gamma_neg`` may also be a
            0-dim tensor (the adaptive-asymmetry controller drives it).
        clip: probability margin m in [0, 1) (Eq. 5); negatives with p <= m give zero loss and gradient.
        eps: floor of the probabilities inside the logarithms, log(max(x, eps)), as in the official code.
            Below it the log term has zero gradient.
        alpha: optional static weighting, alpha for positives and 1 - alpha for negatives.
        focusing_grad: ``'full'`` differentiates through the focusing weight (Eq. 8, the paper's analysis);
            ``'detached'`` treats it as a constant (the official repository's default).
        reduce: return the (weighted) sum instead of the element-wise (N, C) loss.
        check: validate the inputs (costs a device sync; turn off only for trusted inputs).
        return_stats: also return the probability-gap sums of ``probability_stats``, computed in the
            same pass (no second forward).
        scale: optional float or 0-dim tensor multiplying the loss and its gradient, e.g.
            loss_weight / avg_factor. Folding it into the fused pass leaves backward nothing to multiply
            when the loss is summed into the total (no gradient flows into ``scale``).

    Returns:
        The element-wise loss (N, C), or its sum when ``reduce``. float32 for half/bfloat16 logits,
        float64 for float64 logits. With ``return_stats``: ``(loss, stats)``.
    """
    # Compiled, the kernel counts non-finite logits in its own pass (one read of the logits fewer).
    count_nonfinite = check and compile_enabled() and not _compile_failed
    if check:
        check_loss_params(gamma_pos, float(gamma_neg), clip, eps, alpha, focusing_grad)
        weight, is_index = check_inputs(logits, target, weight, check_finite=not count_nonfinite)
    else:
        is_index = target.dim() == 1 and not target.is_floating_point()
        if weight is not None and weight.dim() == 1:
            weight = weight.view(logits.shape[0], -1)
    dtype = _compute_dtype(logits)
    if logits.numel() == 0:
        # Empty batch: 0 (or an empty tensor) still connected to the graph, so backward gives a zero
        # (empty) gradient rather than an error or NaN.
        out = logits.to(dtype) * 0
        out = out.sum() if reduce else out
        return (out, logits.new_zeros(4, dtype=dtype)) if return_stats else out
    if not is_index and target.dtype != dtype:
        target = target.to(dtype)
    if weight is not None:
        weight = weight.detach()
    # Float gammas are constants of the kernel (see KernelConfig); a 0-dim tensor gamma_neg (the adaptive
    # controller's) is passed as a tensor, so that changing it recompiles nothing.
    gn = gamma_neg.detach().to(device=logits.device, dtype=dtype) if isinstance(gamma_neg, Tensor) else None
    if isinstance(scale, Tensor):
        scale = scale.detach().to(device=logits.device, dtype=dtype)
    elif scale is not None:
        scale = float(scale)
    need_grad = torch.is_grad_enabled() and logits.requires_grad
    cfg = _kernel_config(gamma_pos, gamma_neg, clip, eps, alpha, focusing_grad, is_index, reduce, need_grad,
                         return_stats, dtype)._replace(count_nonfinite=count_nonfinite)
    return AsymmetricLossFunction.apply(logits, target, weight, gn, scale, cfg)


def probability_stats(logits: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
    """Sums behind the probability gap (paper Eq. 9-10), as a float64 tensor of 4:

    ``[sum of p over positive slots, number of positive slots, sum of 1 - p over negative slots,
    number of negative slots]``; soft targets count y as positive mass and 1 - y as negative mass, and
    slots with ``weight == 0`` are left out. Sums (not means) so that they can be added across calls and
    all-reduced across ranks; ``probability_gap`` turns them into p_t+, p_t- and Delta p.
    """
    weight, is_index = check_inputs(logits, target, weight)
    with torch.no_grad():
        z = logits.detach().to(torch.float64)
        y = _target_matrix(target, z.shape[1], is_index, z.dtype)
        mask = torch.ones_like(z) if weight is None else (weight > 0).to(z.dtype).expand_as(z)
        p = torch.sigmoid(z)
        return torch.stack([(y * mask * p).sum(), (y * mask).sum(), ((1 - y) * mask * (1 - p)).sum(),
                            ((1 - y) * mask).sum()])


def probability_gap(stats: Tensor) -> Tuple[float, float, float]:
    """(p_t+, p_t-, Delta p = p_t+ - p_t-) from the sums of ``probability_stats`` (paper Eq. 9-10).

    p_t is p for positives and 1 - p for negatives; p_t+ and p_t- are their means. A side with no slots
    gives NaN (and so does Delta p): nothing was measured.
    """
    s = [float(v) for v in stats]
    pt_pos = s[0] / s[1] if s[1] > 0 else float('nan')
    pt_neg = s[2] / s[3] if s[3] > 0 else float('nan')
    return pt_pos, pt_neg, pt_pos - pt_neg


def asymmetric_loss_reference(logits: Tensor,
                              target: Tensor,
                              gamma_pos: float = 0.0,
                              gamma_neg: float = 4.0,
                              clip: float = 0.05,
                              eps: float = 1e-8,
                              alpha: Optional[float] = None,
                              focusing_grad: str = 'full') -> Tensor:
    """Eq. 7 written as plainly as possible, differentiated by autograd (tests, benchmarks, plots).

    ``target`` is (N, C) dense. Element-wise loss, in the dtype of ``logits``.
    """
    p = torch.sigmoid(logits)
    p_m = torch.clamp(p - clip, min=0)
    w_pos = (1 - p) ** gamma_pos
    w_neg = p_m ** gamma_neg
    if focusing_grad == 'detached':
        w_pos, w_neg = w_pos.detach(), w_neg.detach()
    l_pos = w_pos * torch.log(torch.clamp(p, min=eps))
    l_neg = w_neg * torch.log(torch.clamp(1 - p_m, min=eps))
    a_pos, a_neg = (1.0, 1.0) if alpha is None else (alpha, 1 - alpha)
    return -(a_pos * target * l_pos + a_neg * (1 - target) * l_neg)


def asymmetric_loss_single_label(logits: Tensor,
                                 labels: Tensor,
                                 gamma_pos: float = 0.0,
                                 gamma_neg: float = 4.0,
                                 clip: float = 0.0,
                                 eps: float = 1e-8) -> Tensor:
    """Single-label ASL (paper appendix H): Eq. 7's form on softmax probabilities, per sample.

    With p = softmax(z) over the C classes, the target class t contributes -(1 - p_t)^g+ log p_t and
    every other class c contributes -p_m,c^g- log(1 - p_m,c), with p_m = max(p - m, 0). Unlike the
    official ``ASLSingleLabel`` (cross-entropy with label smoothing, where gamma- only acts through the
    smoothing mass), gamma- here down-weights the easy non-target classes directly. With
    gamma_pos = gamma_neg = 0 and m = 0 it is softmax cross-entropy plus the sum over the non-target
    classes c of -log(1 - p_c).

    Args:
        logits: (N, C). labels: (N,) integer class indices in [0, C).
    Returns:
        (N,) per-sample loss, float32 at least. Gradients through plain autograd.
    """
    check_loss_params(gamma_pos, gamma_neg, clip, eps, None, 'full')
    if not isinstance(logits, Tensor) or logits.dim() != 2 or not logits.is_floating_point():
        raise ValueError(f'logits must be a floating (N, C) tensor, got {getattr(logits, "shape", logits)}')
    if not isinstance(labels, Tensor) or labels.dim() != 1 or labels.is_floating_point() \
            or labels.shape[0] != logits.shape[0]:
        raise ValueError(f'labels must be integer class indices of shape ({logits.shape[0]},), '
                         f'got {getattr(labels, "shape", labels)}')
    num_classes = logits.shape[1]
    if labels.numel() and (bool((labels < 0).any()) or bool((labels >= num_classes).any())):
        raise ValueError(f'labels must be in [0, {num_classes - 1}], got min {labels.min().item()}, '
                         f'max {labels.max().item()}')
    if logits.numel() and not bool(torch.isfinite(logits).all()):
        raise ValueError(f'logits contain {int((~torch.isfinite(logits)).sum())} non-finite value(s)')
    z = logits.to(_compute_dtype(logits))
    log_p = torch.clamp(torch.log_softmax(z, dim=1), min=math.log(eps))
    p = log_p.exp()
    y = F.one_hot(labels, num_classes).to(z.dtype)
    loss_pos = -torch.pow(1 - p, gamma_pos) * log_p
    p_m = torch.clamp(p - clip, min=0.0)
    loss_neg = -torch.pow(p_m, gamma_neg) * torch.clamp(torch.log1p(-p_m), min=math.log(eps))
    return torch.lerp(loss_neg, loss_pos, y).sum(dim=1)
