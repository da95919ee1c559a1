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
analytic gradient (Eq. 8 for negatives and its positive-label counterpart) without keeping a graph of
intermediates; it saves only the logits, the targets and the weight. The element-wise kernels run through
``torch.compile`` when it is available and fall back to eager PyTorch otherwise.
"""
import math
import os
import warnings
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

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


def check_inputs(logits: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tuple[Tensor, bool]:
    """Validate logits/targets/weight and return ``(weight as (N, C), (N, 1) or None, is_index)``.

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
        if num and (bool((target < 0).any()) or bool((target > num_classes).any())):
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
    if logits.numel():
        finite = torch.isfinite(logits)
        if not bool(finite.all()):
            bad = int((~finite).sum())
            raise ValueError(f'pred (logits) contains {bad} non-finite value(s) (NaN or inf) '
                             f'out of {logits.numel()}')
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


# --------------------------------------------------------------------------------------------------------
# Element-wise kernels. ``cfg`` is a hashable tuple of the structural choices (static under torch.compile);
# gamma_pos / gamma_neg travel as 0-dim tensors so that an adaptive gamma_neg does not recompile.
# cfg = (clip, log_eps, alpha, full_grad, is_index, reduce)
# --------------------------------------------------------------------------------------------------------
def _target_matrix(target: Tensor, num_classes: int, is_index: bool, dtype) -> Tensor:
    if is_index:
        # Background (= C) matches no column: an all-negative row, as in MMDetection's FocalLoss.
        classes = torch.arange(num_classes, device=target.device)
        return (target.unsqueeze(1) == classes).to(dtype)
    return target.to(dtype)


def _margin_constants(clip: float):
    """logit(m) split into float32 hi + lo parts, and 1 - m (see ``_shifted_probability``)."""
    a = math.log(clip) - math.log1p(-clip)
    a_hi = float(torch.tensor(a, dtype=torch.float32))
    return a_hi, a - a_hi, 1.0 - clip


def _shifted_probability(z: Tensor, p: Tensor, clip: float):
    """p_m = max(p - m, 0) (Eq. 5) without the cancellation of ``p - m`` in float32.

    With a = logit(m): p - m = sigmoid(z) - sigmoid(a) = (1 - m) p (1 - exp(a - z)). ``z - a`` is computed
    as (z - a_hi) - a_lo, which is exact near the margin (Sterbenz), so p_m keeps full relative precision
    right down to the kink. Returns (p_m, above) with ``above = p > m``.
    """
    a_hi, a_lo, one_m_clip = _margin_constants(clip)
    d = (z - a_hi) - a_lo
    above = d > 0
    p_m = torch.where(above, -one_m_clip * p * torch.expm1(-d), torch.zeros_like(p))
    return p_m, above


def _log_one_minus_pm(p_m: Tensor, q: Tensor, clip: float) -> Tensor:
    """log(1 - p_m): log1p(-p_m) for small p_m, log(q + m) (q = 1 - p, exact) where 1 - p_m is small."""
    return torch.where(p_m < 0.5, torch.log1p(-p_m), torch.log(q + clip))


def _loss_terms(z: Tensor, gamma_pos: Tensor, gamma_neg: Tensor, clip: float, log_eps: float):
    """Return (positive loss, negative loss), both -L from Eq. 7, element-wise."""
    q = torch.sigmoid(-z)  # 1 - p without cancellation
    # log p through log-sigmoid: exact where 1 - p rounds to 1; floored at log(eps) as the official code.
    log_p = torch.clamp(F.logsigmoid(z), min=log_eps)
    loss_pos = -torch.pow(q, gamma_pos) * log_p
    if clip > 0:
        p_m, _ = _shifted_probability(z, torch.sigmoid(z), clip)
        log_1m_pm = torch.clamp(_log_one_minus_pm(p_m, q, clip), min=log_eps)
    else:
        p_m = torch.sigmoid(z)
        log_1m_pm = torch.clamp(F.logsigmoid(-z), min=log_eps)
    loss_neg = -torch.pow(p_m, gamma_neg) * log_1m_pm
    return loss_pos, loss_neg


def _combine(y: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
    # y*pos + (1-y)*neg, not neg + y*(pos - neg): the latter cancels catastrophically for y = 1.
    return y * pos + (1.0 - y) * neg


def _forward_kernel(z: Tensor, target: Tensor, weight: Optional[Tensor], gamma_pos: Tensor,
                    gamma_neg: Tensor, cfg: tuple) -> Tensor:
    clip, log_eps, alpha, _, is_index, reduce = cfg
    z = z.to(gamma_pos.dtype)
    loss_pos, loss_neg = _loss_terms(z, gamma_pos, gamma_neg, clip, log_eps)
    if alpha is not None:
        loss_pos = alpha * loss_pos
        loss_neg = (1.0 - alpha) * loss_neg
    y = _target_matrix(target, z.shape[1], is_index, z.dtype)
    loss = _combine(y, loss_pos, loss_neg)  # y*L+ + (1-y)*L-, linear in soft y
    if weight is not None:
        loss = loss * weight.to(z.dtype)
    return loss.sum() if reduce else loss


def _grad_kernel(z: Tensor, target: Tensor, weight: Optional[Tensor], gamma_pos: Tensor,
                 gamma_neg: Tensor, grad_out: Tensor, cfg: tuple) -> Tensor:
    """d(loss)/dz times grad_out (and weight), analytically; see the derivation in the comments."""
    clip, log_eps, alpha, full_grad, is_index, _ = cfg
    out_dtype = z.dtype
    z = z.to(gamma_pos.dtype)
    p = torch.sigmoid(z)
    q = torch.sigmoid(-z)
    pq = p * q                                                     # dp/dz
    # Positives: loss+ = -q^g+ log p, with dq/dz = -pq and d(log p)/dz = q.
    #   full:     d/dz = q^g+ (g+ p log p - q)
    #   detached: d/dz = -q^(g+ + 1)           (weight q^g+ held constant)
    # Where log p is floored at log(eps) its own derivative is 0.
    log_p_raw = F.logsigmoid(z)
    unfloored_p = log_p_raw > log_eps
    log_p = torch.clamp(log_p_raw, min=log_eps)
    q_pow = torch.pow(q, gamma_pos)
    grad_pos = -q_pow * torch.where(unfloored_p, q, torch.zeros_like(q))
    if full_grad:
        grad_pos = grad_pos + gamma_pos * p * q_pow * log_p
    # Negatives: loss- = -p_m^g- log(1 - p_m), with dp_m/dz = pq above the margin (p > m), 0 below.
    #   full (Eq. 8): d/dz = p_m^g- [1/(1 - p_m) - g- log(1 - p_m)/p_m] pq
    #   detached:     d/dz = p_m^g- pq / (1 - p_m)
    if clip > 0:
        p_m, above = _shifted_probability(z, p, clip)
        one_m_pm = torch.clamp(q + clip, max=1.0)                  # 1 - p_m >= m > 0
        log_1m_pm_raw = _log_one_minus_pm(p_m, q, clip)
        unfloored_n = above & (log_1m_pm_raw > log_eps)
        log_1m_pm = torch.clamp(log_1m_pm_raw, min=log_eps)
        pm_pow = torch.pow(p_m, gamma_neg)
        zeros = torch.zeros_like(p)
        grad_neg = pm_pow * torch.where(unfloored_n, pq / one_m_pm, zeros)
        if full_grad:
            # log(1 - p_m)/p_m stays bounded (-> -1) as p_m -> 0; guard the division where p_m == 0.
            safe_pm = torch.where(above, p_m, torch.ones_like(p_m))
            grad_neg = grad_neg - gamma_neg * pm_pow * torch.where(above, log_1m_pm / safe_pm * pq, zeros)
    else:
        # m = 0: p_m = p, 1 - p_m = q, so pq/(1 - p_m) = p and pq/p_m = q: no division needed.
        log_q_raw = F.logsigmoid(-z)
        unfloored_n = log_q_raw > log_eps
        pm_pow = torch.pow(p, gamma_neg)
        grad_neg = pm_pow * torch.where(unfloored_n, p, torch.zeros_like(p))
        if full_grad:
            grad_neg = grad_neg - gamma_neg * pm_pow * q * torch.clamp(log_q_raw, min=log_eps)
    if alpha is not None:
        grad_pos = alpha * grad_pos
        grad_neg = (1.0 - alpha) * grad_neg
    y = _target_matrix(target, z.shape[1], is_index, z.dtype)
    grad = _combine(y, grad_pos, grad_neg)
    if weight is not None:
        grad = grad * weight.to(z.dtype)
    return (grad * grad_out.to(z.dtype)).to(out_dtype)


# --------------------------------------------------------------------------------------------------------
# Kernel dispatch: torch.compile (one fused loop for forward, one for backward) with an eager fallback.
# --------------------------------------------------------------------------------------------------------
_COMPILED = {}
_COMPILE_FAILED = False


def compile_enabled() -> bool:
    """Whether kernels go through torch.compile: ``MMDET_ASL_COMPILE=0`` turns it off."""
    return os.environ.get('MMDET_ASL_COMPILE', '1') not in ('0', 'false', 'False', 'off', '')


def _kernel(name: str):
    global _COMPILE_FAILED
    eager = {'forward': _forward_kernel, 'grad': _grad_kernel}[name]
    if _COMPILE_FAILED or not compile_enabled():
        return eager
    if name not in _COMPILED:
        _COMPILED[name] = torch.compile(eager, dynamic=True)
    return _COMPILED[name]


def _run_kernel(name: str, *args):
    global _COMPILE_FAILED
    fn = _kernel(name)
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 -- any compiler failure falls back to the (identical) eager path
        if fn is _forward_kernel or fn is _grad_kernel:
            raise
        _COMPILE_FAILED = True
        warnings.warn(f'mmdet_asl: torch.compile failed ({type(exc).__name__}: {exc}); '
                      'using the eager implementation from now on. Set MMDET_ASL_COMPILE=0 to skip compiling.')
        return {'forward': _forward_kernel, 'grad': _grad_kernel}[name](*args)


class AsymmetricLossFunction(torch.autograd.Function):
    """Fused ASL: forward computes Eq. 7, backward the analytic gradient.

    Saves only ``logits``, ``target`` and ``weight`` for backward. Computation runs in float32 at least
    (float64 stays float64), outside autocast.
    """

    @staticmethod
    def forward(ctx, logits, target, weight, gamma_pos, gamma_neg, cfg):
        with torch.autocast(device_type=logits.device.type, enabled=False):
            out = _run_kernel('forward', logits, target, weight, gamma_pos, gamma_neg, cfg)
        ctx.save_for_backward(logits, target, weight, gamma_pos, gamma_neg)
        ctx.cfg = cfg
        return out

    @staticmethod
    def backward(ctx, grad_out):
        logits, target, weight, gamma_pos, gamma_neg = ctx.saved_tensors
        grad = None
        if ctx.needs_input_grad[0]:
            with torch.autocast(device_type=logits.device.type, enabled=False):
                grad = _run_kernel('grad', logits, target, weight, gamma_pos, gamma_neg, grad_out, ctx.cfg)
        return grad, None, None, None, None, None


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
                    check: bool = True) -> Tensor:
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

    Returns:
        The element-wise loss (N, C), or its sum when ``reduce``. float32 for half/bfloat16 logits,
        float64 for float64 logits.
    """
    if check:
        check_loss_params(gamma_pos, float(gamma_neg), clip, eps, alpha, focusing_grad)
        weight, is_index = check_inputs(logits, target, weight)
    else:
        is_index = target.dim() == 1 and not target.is_floating_point()
        if weight is not None and weight.dim() == 1:
            weight = weight.view(logits.shape[0], -1)
    dtype = _compute_dtype(logits)
    if not is_index and target.dtype != dtype:
        target = target.to(dtype)
    if weight is not None:
        weight = weight.detach()
    gp = torch.as_tensor(gamma_pos, dtype=dtype, device=logits.device)
    gn = torch.as_tensor(gamma_neg, dtype=dtype, device=logits.device).detach()
    cfg = (float(clip), math.log(eps), None if alpha is None else float(alpha),
           focusing_grad == 'full', is_index, bool(reduce))
    if logits.numel() == 0:
        # Empty batch: 0 (or an empty tensor) connected to the graph, so backward gives a zero gradient.
        out = logits.to(dtype).sum() * 0 if reduce else logits.to(dtype) * 0
        return out
    return AsymmetricLossFunction.apply(logits, target, weight, gp, gn, cfg)


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
