"""Single-label ASL (paper appendix H): Eq. 7's form on softmax probabilities, in plain autograd."""
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .checks import check_params, check_per_class_length
from .params import ASLParams


def asymmetric_loss_single_label(logits: Tensor,
                                 labels: Tensor,
                                 gamma_pos: float = 0.0,
                                 gamma_neg: float = 4.0,
                                 clip: float = 0.0,
                                 eps: float = 0.0) -> Tensor:
    """Per-sample single-label ASL.

    With p = softmax(z) over the C classes, the target class t contributes -(1 - p_t)^g+ log p_t and
    every other class c contributes -p_m,c^g- log(1 - p_m,c), with p_m = max(p - m, 0). Unlike the
    official ``ASLSingleLabel`` (cross-entropy with label smoothing, where gamma- only acts through the
    smoothing mass), gamma- here down-weights the easy non-target classes directly. With
    gamma_pos = gamma_neg = 0 and m = 0 it is softmax cross-entropy plus the sum over the non-target
    classes c of -log(1 - p_c).

    ``eps > 0`` floors the logarithms as the official implementation does (the floored elements lose their
    gradient); with ``eps = 0`` log p_t is the exact log-softmax, and log(1 - p_m) is floored only where
    1 - p_m rounds to 0 (at the dtype's smallest normal number).

    Args:
        logits: (N, C). labels: (N,) integer class indices in [0, C).
    Returns:
        (N,) per-sample loss, float32 at least. Gradients through plain autograd.
    """
    check_params(ASLParams(gamma_pos, gamma_neg, clip, eps, None, 'full'))
    if not isinstance(logits, Tensor) or logits.dim() != 2 or not logits.is_floating_point():
        raise ValueError(f'logits must be a floating (N, C) tensor, got {getattr(logits, "shape", logits)}')
    if not isinstance(labels, Tensor) or labels.dim() != 1 or labels.shape[0] != logits.shape[0]:
        raise ValueError(f'labels must be integer class indices of shape ({logits.shape[0]},), '
                         f'got {getattr(labels, "shape", labels)}')
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f'labels must be integer class indices (any integer dtype), got {labels.dtype}; '
                        'soft or one-hot targets are not single labels')
    num_classes = logits.shape[1]
    check_per_class_length('gamma_neg', gamma_neg, num_classes)
    if labels.numel() and (bool((labels < 0).any()) or bool((labels >= num_classes).any())):
        raise ValueError(f'labels must be in [0, {num_classes - 1}], got min {labels.min().item()}, '
                         f'max {labels.max().item()}')
    if logits.numel() and not bool(torch.isfinite(logits).all()):
        raise ValueError(f'logits contain {int((~torch.isfinite(logits)).sum())} non-finite value(s)')
    z = logits.to(torch.float64 if logits.dtype == torch.float64 else torch.float32)
    log_floor = math.log(eps) if eps > 0 else math.log(torch.finfo(z.dtype).tiny)
    log_p = torch.log_softmax(z, dim=1)
    log_p = torch.clamp(log_p, min=log_floor) if eps > 0 else log_p
    p = log_p.exp()
    y = F.one_hot(labels.long(), num_classes).to(z.dtype)  # one_hot takes int64 only
    loss_pos = -torch.pow(1 - p, gamma_pos) * log_p
    p_m = torch.clamp(p - clip, min=0.0)
    loss_neg = -torch.pow(p_m, gamma_neg) * torch.clamp(torch.log1p(-p_m), min=log_floor)
    return torch.lerp(loss_neg, loss_pos, y).sum(dim=1)
