"""ASL (Eq. 7) and its analytic gradient in one pass over the logits: the fast path.

Everything the backward pass needs is the element-wise gradient dloss/dz, produced here next to the loss,
so autograd keeps one (N, C) tensor instead of the dozen intermediates of the plain formula
(:mod:`.reference`, which this module is tested against). The same code runs eagerly or through
``torch.compile`` (see :mod:`.function`), which fuses it into one loop. Values that change from call to
call (an adaptive gamma-, a tensor avg_factor) arrive as tensors; ``params`` and ``outputs`` are constants
of a compiled kernel.

Transcendental functions per element (what bounds the compiled kernel's speed): one exponential t = exp(-z) and
one logarithm, log1p(exp(-|z|)) for m = 0 or log1p(-p_m) for m > 0, where the exponential is taken in
float64 (see :func:`sigmoid_parts`); dense targets with m > 0 add log1p(exp(-|z|)) for log p. That is the
least Eq. 7 allows: p needs an exponential, the loss a logarithm. Whole-number gammas are products
(:func:`power`); other exponents, and tensor gammas, cost an exp and a log more. Run eagerly, each
operation is a pass over (N, C) memory and the number of passes bounds the speed instead: the eager
kernel takes its sigmoid parts from single-operator sigmoids (more transcendentals, fewer passes) and
skips the multiplications, masks and conversions that change nothing.
"""
import math
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .params import ASLParams


class KernelOutputs(NamedTuple):
    """What one call asks of the kernel (constants of a compiled kernel)."""
    reduce: bool      # the (weighted, scaled) sum instead of the element-wise loss
    need_grad: bool   # the element-wise gradient dloss/dz
    probe: bool       # the probability-gap sums of Eq. 9-10
    probe_per_class: bool = False  # those sums per class, (C, 4), instead of (4,)


class SigmoidParts(NamedTuple):
    p: Tensor         # sigmoid(z)
    q: Tensor         # 1 - p, computed on its own (1 - p cancels where p is near 1)
    p_m: Tensor       # max(p - m, 0) (Eq. 5); p itself when m = 0
    log_p: Optional[Tensor]  # log p, not floored
    log_1m_pm: Tensor  # log(1 - p_m), not floored


def _has_margin(clip) -> bool:
    """Whether the m > 0 formulas apply: a positive float m, or an adaptive m (a tensor, any value)."""
    return isinstance(clip, Tensor) or clip > 0


def sigmoid_parts(z: Tensor, clip, need_log_p: bool = True) -> SigmoidParts:
    """p, q, p_m and the two logarithms Eq. 7 takes, from one exponential t = exp(-z).

    p = 1/(1 + t); q = t p for z >= 0 (q <= 1/2) and 1 - p for z < 0 (no cancellation). exp(-|z|) is t or
    1/t, and log p = min(z, 0) - log1p(exp(-|z|)), log q = -max(z, 0) - log1p(exp(-|z|)). Where t overflows
    (z < -88 in float32), p = 0, q = 1 and exp(-|z|) = 0 exactly.

    For m > 0, p - m cancels near the margin and p_m^gamma- multiplies p_m's relative error by gamma-: t and
    p are computed in float64 and p_m is rounded once from them; log(1 - p_m) = log1p(-p_m), as
    1 - p_m >= m has no cancellation. ``need_log_p=False`` leaves log p out (None) where only negatives
    are computed: for m > 0 one logarithm fewer.
    """
    return sigmoid_parts_and_log_q(z, clip, need_log_p)[0]


def sigmoid_parts_and_log_q(z: Tensor, clip, need_log_p: bool = True,
                            need_log_q: bool = False) -> Tuple[SigmoidParts, Optional[Tensor]]:
    """:func:`sigmoid_parts`, and log(1 - p), not floored, where asked for (the quality focal loss's positive
    slot) or free: with m = 0 it is log(1 - p_m), always given; for m > 0 ``need_log_q`` computes it from the
    log1p(exp(-|z|)) that log p takes (it implies ``need_log_p``), else it is None."""
    need_log_p = need_log_p or need_log_q
    if not torch.compiler.is_compiling():
        return _sigmoid_parts_eager(z, clip, need_log_p, need_log_q)
    margin = _has_margin(clip)
    wide = z.to(torch.float64) if margin else z
    t = torch.exp(-torch.clamp(wide, min=-700.0) if margin else -wide)
    p_wide = 1.0 / (1.0 + t)
    nonneg = z >= 0
    p = p_wide.to(z.dtype)
    q = torch.where(nonneg, (t * p_wide).to(z.dtype), 1.0 - p)
    if margin and not need_log_p:
        p_m = torch.clamp(p_wide - clip, min=0.0).to(z.dtype)
        return SigmoidParts(p, q, p_m, None, torch.log1p(-p_m)), None
    log1p_e = torch.log1p(torch.where(nonneg, t, 1.0 / t).to(z.dtype))   # softplus(-|z|)
    log_p = torch.clamp(z, max=0.0) - log1p_e if need_log_p else None
    log_q = -torch.clamp(z, min=0.0) - log1p_e if need_log_q or not margin else None
    if margin:
        p_m = torch.clamp(p_wide - clip, min=0.0).to(z.dtype)
        return SigmoidParts(p, q, p_m, log_p, torch.log1p(-p_m)), log_q
    return SigmoidParts(p, q, p, log_p, log_q), log_q


def _sigmoid_parts_eager(z: Tensor, clip, need_log_p: bool, need_log_q: bool):
    """The same parts from single-operator sigmoids and log-sigmoids (p in float64 for m > 0, as above).
    Run eagerly, every operation is a pass over memory: these take four passes where sharing one
    exponential takes fourteen; a fused loop pays per transcendental instead, and shares the exponential."""
    margin = _has_margin(clip)
    # In place on fresh float64 copies: each (N, C) float64 allocation is one more pass.
    p_wide = z.to(torch.float64, copy=True).sigmoid_() if margin else torch.sigmoid(z)
    minus_z = -z
    p, q = p_wide.to(z.dtype), torch.sigmoid(minus_z)
    log_p = F.logsigmoid(z) if need_log_p else None
    if margin:
        p_m = (p_wide - clip).clamp_(min=0.0).to(z.dtype)
        return SigmoidParts(p, q, p_m, log_p, torch.log1p(-p_m)), F.logsigmoid(minus_z) if need_log_q else None
    log_q = F.logsigmoid(minus_z)
    return SigmoidParts(p, q, p, log_p, log_q), log_q


def power(x: Tensor, exponent) -> Tensor:
    """x ** exponent, a whole-number float exponent up to 8 (the usual gammas: 1, 2, 4) as products: eager
    aten.pow evaluates exp(g log x) (two transcendentals per element) for exponents other than 2 and 3;
    inductor emits the same products. A tensor exponent (adaptive or per-class gamma-) goes through pow."""
    if isinstance(exponent, float) and exponent.is_integer() and 0 <= exponent <= 8:
        result, base, n = None, x, int(exponent)
        while n:
            if n & 1:
                result = base if result is None else result * base
            n >>= 1
            base = base * base if n else base
        return torch.ones_like(x) if result is None else result
    return x ** exponent


def positive_term(parts: SigmoidParts, gamma_pos: float, params: ASLParams, need_grad: bool):
    """-L+ of Eq. 7 and its derivative in z, element-wise.

    loss+ = -q^g+ log p, with dq/dz = -pq and d(log p)/dz = q:
      full:      d/dz = -q^g+ (q - g+ p log p)
      detached:  d/dz = -q^g+ q          (the weight q^g+ held constant)
    With eps > 0, log p is floored at log(eps) and where the floor is active its derivative is 0 (the
    official implementation's clamp); with eps = 0 log p is the exact log-sigmoid.
    """
    floored = params.eps > 0
    log_eps = math.log(params.eps) if floored else None
    log_p = torch.clamp(parts.log_p, min=log_eps) if floored else parts.log_p
    weight = power(parts.q, gamma_pos)
    loss = -weight * log_p
    if not need_grad:
        return loss, None
    slope = torch.where(parts.log_p > log_eps, parts.q, 0.0) if floored else parts.q
    if params.focusing_grad == 'full':
        slope = slope - gamma_pos * parts.p * log_p
    return loss, -weight * slope


def negative_term(parts: SigmoidParts, gamma_neg, params: ASLParams, need_grad: bool, clip=None):
    """-L- of Eq. 7 and its derivative in z, element-wise.

    loss- = -p_m^g- log(1 - p_m), with dp_m/dz = pq above the margin and 0 below it, 1 - p_m = q + m:
      full (Eq. 8): d/dz = p_m^g- [pq/(1 - p_m) - g- pq log(1 - p_m)/p_m]
      detached:     d/dz = p_m^g- pq/(1 - p_m)
    For m = 0, pq/(1 - p_m) = p and pq/p_m = q. ``gamma_neg`` is a float, a 0-dim tensor or a (C,) tensor;
    ``clip`` (default ``params.clip``) an adaptive m as a 0-dim or (C,) tensor (the m > 0 formulas, exact
    at m = 0 too).
    """
    clip = params.clip if clip is None else clip
    margin = _has_margin(clip)
    # 1 - p_m >= m: with a float m > eps the floor at log(eps) is never reached (no clamp, no mask). With
    # eps = 0 only a tensor m (adaptive, possibly 0) needs one: p_m rounds to 1 in float32 for z > ~16.6, and
    # log(1 - p_m) is floored at the dtype's smallest normal number instead of becoming -inf.
    if params.eps > 0:
        floored, log_eps = not (isinstance(clip, float) and clip > params.eps), math.log(params.eps)
    else:
        floored, log_eps = isinstance(clip, Tensor), math.log(torch.finfo(parts.p.dtype).tiny)
    p, q, p_m = parts.p, parts.q, parts.p_m
    log_1m_pm = torch.clamp(parts.log_1m_pm, min=log_eps) if floored else parts.log_1m_pm
    weight = power(p_m, gamma_neg)
    loss = -weight * log_1m_pm
    if not need_grad:
        return loss, None
    pq = p * q if margin else None
    slope = pq / (q + clip) if margin else p
    if floored:
        slope = torch.where(parts.log_1m_pm > log_eps, slope, 0.0)
    if params.focusing_grad == 'full':
        # log(1 - p_m)/p_m -> -1 as p_m -> 0; below the margin the clamp only avoids 0/0 (masked below).
        pq_over_pm = pq / torch.clamp(p_m, min=1e-30) if margin else q
        slope = slope - gamma_neg * log_1m_pm * pq_over_pm
    grad = weight * slope
    # Below the margin p_m^g- = 0 and the slope is finite: for a float g- > 0 the product is 0 already.
    masked = margin and not (isinstance(gamma_neg, float) and gamma_neg > 0)
    return loss, torch.where(p_m > 0, grad, 0.0) if masked else grad


def _sum64(x: Tensor) -> Tensor:
    """The sum of x as float64. Compiled, a float32 accumulator drifts over millions of terms: the
    accumulator is float64. Eager on the CPU, aten's cascade summation is accurate in float32, and a
    float64 sum would first convert x (a pass writing twice its bytes)."""
    if x.device.type == 'cpu' and not torch.compiler.is_compiling():
        return x.sum().to(torch.float64)
    return x.sum(dtype=torch.float64)


def _probe_sums(terms, per_class: bool) -> Tensor:
    """The four probe sums of (N, C) terms: (4,), or (C, 4) summed over the rows only."""
    if per_class:
        return torch.stack([t.sum(0, dtype=torch.float64) for t in terms], dim=1)
    return torch.stack([_sum64(t) for t in terms])


def _gamma_at(gamma_neg, cls: Tensor):
    """gamma- (or m) of the labelled class of each row: a (C,) tensor is indexed, a scalar stays as it is."""
    return gamma_neg[cls] if isinstance(gamma_neg, Tensor) and gamma_neg.dim() == 1 else gamma_neg


def loss_and_grad(z: Tensor, target: Tensor, weight: Optional[Tensor], gamma_neg, scale,
                  params: ASLParams, outputs: KernelOutputs, clip: Optional[Tensor] = None):
    """Return ``(loss, grad, probe_sums)`` of Eq. 7 for (N, C) logits.

    ``loss`` is element-wise (N, C) or, with ``outputs.reduce``, its float64-accumulated sum; ``grad`` is
    dloss/dz (N, C) (None unless ``outputs.need_grad``); both are weighted by ``weight`` ((N, 1) or
    (N, C)) and multiplied by ``scale`` (a float or 0-dim tensor). ``probe_sums`` are those of
    :func:`~mmdet_asl.ops.asl.reference.probe_sums_reference` (None unless ``outputs.probe``).
    ``target`` is (N,) int64 class indices (background = C) or (N, C) targets in [0, 1]; ``gamma_neg``
    a float, a 0-dim or a (C,) tensor; ``clip`` None (``params.clip``) or an adaptive m as a 0-dim or (C,)
    tensor. Computes in the dtype of ``z`` (float32 or float64).
    """
    is_index = target.dim() == 1
    gamma_neg = params.gamma_neg if gamma_neg is None else gamma_neg
    a_pos, a_neg = (1.0, 1.0) if params.alpha is None else (params.alpha, 1.0 - params.alpha)
    clip = params.clip if clip is None else clip
    parts = sigmoid_parts(z, clip, need_log_p=not is_index)
    # Every slot is first taken as a negative; the positives of index labels are corrected below.
    loss, grad = negative_term(parts, gamma_neg, params, outputs.need_grad, clip)
    if is_index:
        return _with_index_positives(z, target, weight, gamma_neg, scale, params, outputs, parts, loss, grad, clip)
    y = target.to(z.dtype)
    loss_pos, grad_pos = positive_term(parts, params.gamma_pos, params, outputs.need_grad)
    # lerp(neg, pos, y) = y pos + (1 - y) neg, exact at y = 0 and 1: soft targets interpolate (Eq. 7 is
    # linear in y).
    loss = torch.lerp(_times(loss, a_neg), _times(loss_pos, a_pos), y)
    if outputs.need_grad:
        grad = torch.lerp(_times(grad, a_neg), _times(grad_pos, a_pos), y)
    sums = None
    if outputs.probe:
        counted = 1.0 if weight is None else (weight > 0).to(z.dtype)
        positive, negative = counted * y, counted * (1 - y)   # (N, C): weight-0 slots count on neither side
        sums = _probe_sums([positive * parts.p, positive, negative * parts.q, negative], outputs.probe_per_class)
    return _weighted(loss, weight, scale, outputs.reduce), _weighted(grad, weight, scale, False), sums


def _times(x: Tensor, factor: float) -> Tensor:
    """x * factor; x itself for a factor of 1 (the alpha factors without alpha), no pass over memory."""
    return x if factor == 1.0 else x * factor


def _weighted(x: Optional[Tensor], weight, scale, reduce: bool):
    if x is None:
        return None
    x = x if weight is None else x * weight
    x = _sum64(x).to(x.dtype) if reduce else x
    return x if scale is None else x * scale


def _with_index_positives(z, labels, weight, gamma_neg, scale, params, outputs, parts, loss, grad, clip):
    """The positive slot of each foreground row (label < C), computed on the N gathered logits only, in
    float64 (N values: the positive term is then as accurate as can be), replaces the negative term of
    that slot: scattered into the element-wise results (in place: tensors this kernel made), or added as a
    correction to the sum."""
    a_pos, a_neg = (1.0, 1.0) if params.alpha is None else (params.alpha, 1.0 - params.alpha)
    num_classes = z.shape[1]
    foreground = (labels < num_classes).unsqueeze(1)     # background (= C) rows stay all negative
    cls = torch.clamp(labels, max=num_classes - 1).unsqueeze(1)
    clip_at = _gamma_at(clip, cls)
    parts_at = sigmoid_parts(z.gather(1, cls).to(torch.float64), clip_at)
    loss_pos, grad_pos = positive_term(parts_at, params.gamma_pos, params, outputs.need_grad)
    loss_neg_at, grad_neg_at = negative_term(parts_at, _gamma_at(gamma_neg, cls), params, outputs.need_grad, clip_at)
    w_at = None if weight is None else (weight if weight.shape[1] == 1 else weight.gather(1, cls))
    loss = _times(loss, a_neg)
    if outputs.reduce:
        correction = torch.where(foreground, a_pos * loss_pos - a_neg * loss_neg_at, 0.0)
        total = _sum64(loss if weight is None else loss * weight) + _sum64(_weighted(correction, w_at, None, False))
        loss = total.to(z.dtype) if scale is None else total.to(z.dtype) * scale
    else:
        loss_at = torch.where(foreground, a_pos * loss_pos, a_neg * loss_neg_at).to(z.dtype)
        loss = _weighted(loss, weight, scale, False).scatter_(1, cls, _weighted(loss_at, w_at, scale, False))
    if outputs.need_grad:
        grad_at = torch.where(foreground, a_pos * grad_pos, a_neg * grad_neg_at).to(z.dtype)
        grad = _weighted(_times(grad, a_neg), weight, scale, False).scatter_(1, cls,
                                                                           _weighted(grad_at, w_at, scale, False))
    sums = None
    if outputs.probe:
        counted = torch.ones_like(z) if weight is None else (weight > 0).to(z.dtype).expand_as(z)
        counted_at = foreground.to(z.dtype) * (1.0 if w_at is None else (w_at > 0).to(z.dtype))
        if outputs.probe_per_class:
            # the positive slot's terms go to its class's row; the dense sums are per column
            rows = cls.squeeze(1)
            per_class = [torch.zeros(z.shape[1], dtype=torch.float64, device=z.device).index_add(
                0, rows, x.squeeze(1).to(torch.float64)) for x in (counted_at * parts_at.p, counted_at,
                                                                   counted_at * parts_at.q)]
            num_pos = per_class[1]
            sums = torch.stack([per_class[0], num_pos, counted.mul(parts.q).sum(0, dtype=torch.float64) - per_class[2],
                                counted.sum(0, dtype=torch.float64) - num_pos], dim=1)
        else:
            num_pos = _sum64(counted_at)
            sums = torch.stack([_sum64(counted_at * parts_at.p), num_pos,
                                _sum64(counted * parts.q) - _sum64(counted_at * parts_at.q),
                                _sum64(counted) - num_pos])
    return loss, grad, sums
