"""The standard softmax focal loss for single-label classification, registered in MMPretrain's ``MODELS``.

Per sample, with p = softmax(z) and t the target class: -(1 - p_t)^gamma log p_t (Lin et al., 2017, Eq. 5
with the softmax in place of the per-class sigmoid). Non-target classes add nothing of their own; they act
only through the softmax. gamma = 0 is exactly softmax cross-entropy (``torch.nn.functional.cross_entropy``).
MMPretrain's own ``FocalLoss`` is the sigmoid (per-class) form.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmpretrain.registry import MODELS

from ...ops.asl.checks import check_real

REDUCTIONS = ('none', 'mean', 'sum')


def softmax_focal_loss(logits: Tensor, labels: Tensor, gamma: float = 2.0) -> Tensor:
    """Per-sample softmax focal loss -(1 - p_t)^gamma log p_t.

    Args:
        logits (Tensor): (N, C) class scores.
        labels (Tensor): (N,) integer class indices in [0, C).
        gamma (float): focusing exponent, >= 0.

    Returns:
        Tensor: (N,) losses.
    """
    if labels.dim() != 1 or labels.is_floating_point() or labels.shape[0] != logits.shape[0]:
        raise ValueError(f'labels must be ({logits.shape[0]},) integer class indices, got '
                         f'{tuple(labels.shape)} {labels.dtype} (soft targets from Mixup/CutMix are not supported)')
    if labels.numel() and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f'labels must be in [0, {logits.shape[1]}), got [{int(labels.min())}, {int(labels.max())}]')
    if logits.numel() and not bool(torch.isfinite(logits).all()):
        raise ValueError(f'cls_score (logits) contains {int((~torch.isfinite(logits)).sum())} non-finite value(s) '
                         f'(NaN or inf) out of {logits.numel()}')
    log_pt = F.log_softmax(logits.float(), dim=1).gather(1, labels.long()[:, None]).squeeze(1)
    if gamma == 0:
        return -log_pt
    return -(1 - log_pt.exp()).clamp(min=0).pow(gamma) * log_pt


@MODELS.register_module()
class SoftmaxFocalLoss(nn.Module):
    """Softmax focal loss with MMPretrain's loss interface ``forward(cls_score, label, weight, avg_factor)``.

    Args:
        gamma (float): focusing exponent. Default 2.
        reduction (str): 'none' | 'mean' | 'sum'. 'mean' = sum / avg_factor (MMPretrain's heads pass
            avg_factor = N), or the mean over samples without avg_factor.
        loss_weight (float): multiplier. Default 1.
    """

    def __init__(self, gamma: float = 2.0, reduction: str = 'mean', loss_weight: float = 1.0):
        super().__init__()
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not 0 <= gamma < float('inf'):
            raise ValueError(f'gamma must be a finite number >= 0, got {gamma!r}')
        if reduction not in REDUCTIONS:
            raise ValueError(f'reduction must be one of {REDUCTIONS}, got {reduction!r}')
        self.gamma, self.reduction = float(gamma), reduction
        self.loss_weight = check_real('loss_weight', loss_weight, low=0.0)

    def extra_repr(self) -> str:
        return f'gamma={self.gamma}, reduction={self.reduction!r}, loss_weight={self.loss_weight}'

    def forward(self, cls_score: Tensor, label: Tensor, weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None, reduction_override: Optional[str] = None, **kwargs) -> Tensor:
        if reduction_override not in (None, ) + REDUCTIONS:
            raise ValueError(f'reduction_override must be None or one of {REDUCTIONS}, got {reduction_override!r}')
        reduction = reduction_override or self.reduction
        if label.dim() == 2 and label.shape[1] == 1:
            label = label.flatten()
        loss = softmax_focal_loss(cls_score, label, self.gamma)
        if weight is not None:
            if weight.numel() != loss.numel():
                raise ValueError(f'weight must be (N,) = ({loss.numel()},), got {tuple(weight.shape)}')
            loss = loss * weight.float().flatten()
        if reduction == 'sum':
            if avg_factor is not None:
                raise ValueError('avg_factor can not be used with reduction="sum"')
            loss = loss.sum()
        elif reduction == 'mean':
            if avg_factor is not None:
                # as the ASL: a normaliser >= 0 (eps keeps 0 from dividing by zero)
                if not isinstance(avg_factor, Tensor):
                    avg_factor = check_real('avg_factor', avg_factor, low=0.0)
                elif not bool(torch.isfinite(avg_factor).all() & (avg_factor >= 0).all()):
                    raise ValueError(f'avg_factor must be finite and >= 0, got {avg_factor}')
            loss = loss.sum() / (avg_factor + torch.finfo(torch.float32).eps) if avg_factor is not None \
                else loss.mean()
        return self.loss_weight * loss.to(cls_score.dtype)
