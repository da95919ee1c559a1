"""The Asymmetric Loss written as plainly as possible: the specification every fast path is tested against.

Ben-Baruch, Ridnik et al., "Asymmetric Loss For Multi-Label Classification", ICCV 2021. Torch only,
differentiated by autograd; nothing here is tuned for speed.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def asymmetric_loss_reference(logits: Tensor,
                              target: Tensor,
                              gamma_pos: float = 0.0,
                              gamma_neg=4.0,
                              clip: float = 0.05,
                              eps: float = 0.0,
                              alpha: Optional[float] = None,
                              focusing_grad: str = 'full') -> Tensor:
    """Element-wise ASL, Eq. 7, for (N, C) logits and dense (N, C) targets y in [0, 1].

    ``gamma_neg`` may be a float, a 0-dim tensor or a (C,) tensor (one gamma- per class). ``alpha``
    weights positives by alpha and negatives by 1 - alpha (the paper's "FL + linear weighting").
    ``focusing_grad='detached'`` holds the focusing weights constant under differentiation (the
    official repository's default); ``'full'`` differentiates through them (Eq. 8). ``eps > 0`` floors the
    arguments of the logarithms as the official implementation does (``eps = 0``: no floor).
    """
    p = torch.sigmoid(logits)
    p_m = torch.clamp(p - clip, min=0)                                   # Eq. 5: the shifted probability
    w_pos = (1 - p) ** gamma_pos                                         # Eq. 7: focusing of positives
    w_neg = p_m ** gamma_neg                                             # Eq. 7: focusing of negatives
    if focusing_grad == 'detached':
        w_pos, w_neg = w_pos.detach(), w_neg.detach()
    l_pos = w_pos * torch.log(torch.clamp(p, min=eps))                   # Eq. 7: L+
    l_neg = w_neg * torch.log(torch.clamp(1 - p_m, min=eps))             # Eq. 7: L-
    a_pos, a_neg = (1.0, 1.0) if alpha is None else (alpha, 1 - alpha)
    # Linear in y: soft targets interpolate between the two terms.
    return -(a_pos * target * l_pos + a_neg * (1 - target) * l_neg)


def dense_target(target: Tensor, num_classes: int, dtype=torch.float64) -> Tensor:
    """(N,) class indices with background = C (MMDetection's convention) as a dense (N, C) 0/1 matrix;
    (N, C) targets are returned in ``dtype``."""
    if target.dim() == 1 and not target.is_floating_point():
        classes = torch.arange(num_classes, device=target.device)
        return (target.long().unsqueeze(1) == classes).to(dtype)
    return target.to(dtype)


def probe_sums_reference(logits: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                         per_class: bool = False) -> Tensor:
    """The sums behind the probability gap, Eq. 9-10, as a float64 tensor of 4.

    ``[sum of p over positive slots, number of positive slots, sum of 1 - p over negative slots,
    number of negative slots]``. ``target`` is dense (N, C) or (N,) class indices (background = C); a
    soft target y counts y as positive mass and 1 - y as negative mass; slots with ``weight == 0`` are left
    out. Sums, not means, so that they add across iterations and all-reduce across ranks. ``per_class``:
    the same four sums for each class (column), as a (C, 4) tensor.
    """
    with torch.no_grad():
        z = logits.detach().to(torch.float64)
        y = dense_target(target, z.shape[1])
        counted = torch.ones_like(z) if weight is None else \
            (weight.detach().reshape(z.shape[0], -1) > 0).to(z.dtype).expand_as(z)
        p = torch.sigmoid(z)
        dims = 0 if per_class else (0, 1)
        return torch.stack([(y * counted * p).sum(dims), (y * counted).sum(dims),
                            ((1 - y) * counted * (1 - p)).sum(dims), ((1 - y) * counted).sum(dims)], dim=-1)


def probability_gap(sums: Tensor) -> Tuple[float, float, float]:
    """(p_t+, p_t-, Delta p = p_t+ - p_t-) from the sums of :func:`probe_sums_reference` (Eq. 9-10).

    p_t is p for positives and 1 - p for negatives; p_t+ and p_t- are their means. A side with no slots
    gives NaN (and so does Delta p): nothing was measured.
    """
    s = [float(v) for v in sums]
    pt_pos = s[0] / s[1] if s[1] > 0 else float('nan')
    pt_neg = s[2] / s[3] if s[3] > 0 else float('nan')
    return pt_pos, pt_neg, pt_pos - pt_neg


def focusing_weight(base: Tensor, gamma: float) -> Tensor:
    """``base ** gamma`` for ``base >= 0``, with the limit's zero gradient where ``base == 0``.

    ``torch.pow`` differentiates 0 ** gamma (0 < gamma < 1) to inf, and the chain rule then multiplies that by
    the zero gradient the other factor sends, giving NaN; the product weight * BCE has zero gradient there.
    """
    nonzero = base > 0
    safe = torch.where(nonzero, base, torch.ones_like(base))
    return torch.where(nonzero, safe**gamma, torch.full_like(base, 1.0 if gamma == 0 else 0.0))


def quality_asymmetric_loss_reference(pred: Tensor,
                                      quality: Tensor,
                                      positive: Tensor,
                                      gamma_pos: float = 2.0,
                                      gamma_neg: float = 2.0,
                                      clip: float = 0.0,
                                      activated: bool = False) -> Tensor:
    """Element-wise asymmetric quality focal loss for (N, C) scores, (N, C) qualities q and an (N, C) mask of
    positive slots.

    Quality Focal Loss (Li et al., NeurIPS 2020, Eq. 5) with ASL's asymmetry (Eq. 5 and 7), with sigma the
    predicted probability and sigma_m = max(sigma - m, 0)::

        negative slot:               -sigma_m ** gamma_neg * log(1 - sigma_m)
        positive slot of quality q:  -|q - sigma| ** gamma_pos * (q log(sigma) + (1 - q) log(1 - sigma))

    With q = 1 the positive term is Eq. 7's L+; with gamma_pos = gamma_neg = beta and m = 0 the loss is
    QFL(beta), computed with the same PyTorch functions as MMDetection's ``quality_focal_loss*``.
    ``activated``: ``pred`` holds probabilities and the cross-entropies are ``F.binary_cross_entropy`` (its
    logs floored at -100); otherwise ``pred`` holds logits (``F.binary_cross_entropy_with_logits``).
    """
    if activated:
        p = pred
        bce = F.binary_cross_entropy
    else:
        p = torch.sigmoid(pred)
        bce = F.binary_cross_entropy_with_logits
    p_m = torch.clamp(p - clip, min=0)                                           # Eq. 5
    if clip == 0:
        ce_neg = bce(pred, torch.zeros_like(pred), reduction='none')             # -log(1 - sigma)
    elif activated:
        ce_neg = F.binary_cross_entropy(p_m, torch.zeros_like(p_m), reduction='none')
    else:
        ce_neg = -torch.log1p(-p_m)                                              # 1 - sigma_m >= m > 0
    l_neg = focusing_weight(p_m, gamma_neg) * ce_neg                             # Eq. 7: L-
    l_pos = focusing_weight((quality - p).abs(), gamma_pos) * bce(pred, quality, reduction='none')  # QFL, Eq. 5
    return torch.where(positive, l_pos, l_neg)


def varifocal_asymmetric_loss_reference(logits: Tensor,
                                        target: Tensor,
                                        alpha: float = 0.75,
                                        gamma_neg: float = 2.0,
                                        clip: float = 0.0,
                                        iou_weighted: bool = True) -> Tensor:
    """Element-wise asymmetric varifocal loss for (N, C) logits and dense (N, C) IoU targets q.

    Varifocal Loss (Zhang et al., CVPR 2021, Eq. 2) with ASL's probability margin on the negatives (Eq. 5 and 7),
    p_m = max(p - m, 0)::

        positive slot (q > 0):   -q * (q log(p) + (1 - q) log(1 - p))     (without the leading q if not iou_weighted)
        negative slot (q <= 0):  -alpha * p_m ** gamma_neg * log(1 - p_m)

    VFL is already asymmetric (no focusing of positives, gamma+ = 0); with m = 0 this is ``varifocal_loss``,
    computed with the same PyTorch functions.
    """
    p = torch.sigmoid(logits)
    target = target.type_as(logits)
    positive = target > 0
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction='none')
    l_pos = ce * (target if iou_weighted else 1.0)
    if clip == 0:
        # VFL's negative weight |p - q|^gamma, q <= 0 (q = 0 in every MMDetection head)
        l_neg = alpha * focusing_weight((p - target).abs(), gamma_neg) * ce
    else:
        p_m = torch.clamp(p - clip, min=0)                                       # Eq. 5
        l_neg = alpha * focusing_weight(p_m, gamma_neg) * -torch.log1p(-p_m)     # Eq. 7: L-
    return torch.where(positive, l_pos, l_neg)
