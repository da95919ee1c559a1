"""The asymmetric quality focal loss and its analytic gradient in one pass over the logits: the fast path of
:func:`~mmdet_asl.ops.asl.reference.quality_asymmetric_loss_reference` (its specification, which this module is
tested against) for logits.

With p = sigmoid(z), p_m = max(p - m, 0) (ASL, Eq. 5) and a quality q in [0, 1] per positive slot::

    negative slot:  -p_m^g- log(1 - p_m)                                 (ASL's L-, Eq. 7)
    positive slot:  -|q - p|^g+ (q log p + (1 - q) log(1 - p))           (QFL, Li et al. 2020, Eq. 5)

The negative slot is :func:`~mmdet_asl.ops.asl.kernel.negative_term` (eps = 0, the focusing weight
differentiated). The positive slot's derivative, with d = p - q and BCE = -(q log p + (1 - q) log(1 - p)),
dBCE/dz = p - q and d|d|/dz = sign(d) p (1 - p)::

    d/dz = |d|^g+ d + g+ sign(d) |d|^(g+ - 1) p (1 - p) BCE

where d = 0 (the weight's minimum) has the limit's zero gradient, as the specification's ``focusing_weight``.

Run eagerly, every operation is a pass over (N, C) memory, and the positive slots are few (one per foreground
anchor in the detection heads): the negative term is computed on every slot and the positive term on the
gathered positive slots only (in float64: they are few), which replace it. Compiled (``torch.compile``
fuses one loop), gathering would make the shapes depend on the data: both terms are computed on every slot
and selected by the mask, sharing the one exponential and the one log1p(exp(-|z|)).
"""
from typing import Optional

import torch
from torch import Tensor

from .kernel import KernelOutputs, SigmoidParts, _sum64, _weighted, negative_term, power, sigmoid_parts_and_log_q
from .params import ASLParams


def quality_positive_term(z: Tensor, parts: SigmoidParts, log_q: Tensor, quality: Tensor, gamma_pos: float,
                          need_grad: bool):
    """-|q - p|^g+ (q log p + (1 - q) log(1 - p)) and its derivative in z, element-wise; log_q = log(1 - p)."""
    # d = p - q, from whichever of p and 1 - p is accurate: (1 - q) - (1 - p) where p > 1/2 (p rounds to 1
    # there, 1 - p does not), p - q below.
    d = torch.where(z >= 0, (1.0 - quality) - parts.q, parts.p - quality)
    a = d.abs()
    weight = power(a, gamma_pos)
    # BCE with logits from the two log-sigmoids; lerp is exact at q = 0 and q = 1.
    bce = -torch.lerp(log_q, parts.log_p, quality)
    loss = weight * bce
    if not need_grad:
        return loss, None
    grad = weight * d
    if gamma_pos != 0:
        grad = grad + gamma_pos * parts.p * parts.q * bce * _signed_power(d, a, weight, gamma_pos)
    return loss, grad


def _signed_power(d: Tensor, a: Tensor, weight: Tensor, gamma: float) -> Tensor:
    """sign(d) |d|^(gamma - 1), 0 at d = 0 (``weight`` = |d|^gamma): products for whole-number gammas, else
    weight / d, which would be 0/0 at d = 0."""
    if gamma == 1:
        return torch.sign(d)
    if float(gamma).is_integer():
        return d * power(a, float(gamma) - 2.0)
    return torch.where(d != 0, weight / d, 0.0)


def quality_loss_and_grad(z: Tensor, quality: Tensor, positive: Tensor, weight: Optional[Tensor], scale,
                          params: ASLParams, outputs: KernelOutputs):
    """Return ``(loss, grad)`` of the asymmetric quality focal loss for (N, C) logits.

    ``quality``: (N, C) qualities in [0, 1], read on the positive slots only; ``positive``: (N, C) bool mask.
    ``params``: gamma_pos, gamma_neg (floats) and the margin m (``clip``); eps = 0 and the focusing weights
    differentiated (the specification has no other). ``loss`` is element-wise (N, C) or, with ``outputs.reduce``,
    its float64-accumulated sum; ``grad`` is dloss/dz (N, C) (None unless ``outputs.need_grad``); both are
    weighted by ``weight`` ((N, 1) or (N, C)) and multiplied by ``scale`` (a float or 0-dim tensor). Computes
    in the dtype of ``z`` (float32 or float64).
    """
    if not torch.compiler.is_compiling():
        return _gathered_positives(z, quality, positive, weight, scale, params, outputs)
    parts, log_q = sigmoid_parts_and_log_q(z, params.clip, need_log_q=True)
    loss_neg, grad_neg = negative_term(parts, params.gamma_neg, params, outputs.need_grad)
    loss_pos, grad_pos = quality_positive_term(z, parts, log_q, quality, params.gamma_pos, outputs.need_grad)
    loss = torch.where(positive, loss_pos, loss_neg)
    grad = torch.where(positive, grad_pos, grad_neg) if outputs.need_grad else None
    return _weighted(loss, weight, scale, outputs.reduce), _weighted(grad, weight, scale, False)


def _gathered_positives(z, quality, positive, weight, scale, params: ASLParams, outputs: KernelOutputs):
    """The eager kernel: the negative term on every slot, the positive term on the gathered positive slots
    (float64), scattered over it in place (tensors this kernel made), or added as a correction to the sum."""
    parts, _ = sigmoid_parts_and_log_q(z, params.clip, need_log_p=False)
    loss, grad = negative_term(parts, params.gamma_neg, params, outputs.need_grad)
    at = positive.nonzero(as_tuple=True)   # (rows, columns) of the positive slots; indexing follows any strides
    z_at = z[at].to(torch.float64)
    parts_at, log_q_at = sigmoid_parts_and_log_q(z_at, 0.0)
    loss_at, grad_at = quality_positive_term(z_at, parts_at, log_q_at, quality[at].to(torch.float64),
                                             params.gamma_pos, outputs.need_grad)
    w_at = None
    if weight is not None:
        w_at = weight.expand_as(z)[at].to(torch.float64)
        loss_at = loss_at * w_at
        grad_at = None if grad_at is None else grad_at * w_at
    if outputs.reduce:
        loss_neg_at = loss[at].to(torch.float64)
        correction = loss_at - (loss_neg_at if w_at is None else loss_neg_at * w_at)
        total = _sum64(loss if weight is None else loss * weight) + correction.sum()
        loss = total.to(z.dtype) if scale is None else total.to(z.dtype) * scale
    else:
        loss = _weighted(loss, weight, scale, False)
        loss[at] = (loss_at if scale is None else loss_at * scale).to(z.dtype)
    if grad is not None:
        grad = _weighted(grad, weight, scale, False)
        grad[at] = (grad_at if scale is None else grad_at * scale).to(z.dtype)
    return loss, grad
