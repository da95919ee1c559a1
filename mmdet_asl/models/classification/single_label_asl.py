"""Single-label ASL (paper appendix H) for MMPretrain classifiers, registered in MMPretrain's ``MODELS`` as
``AsymmetricLossSingleLabel`` (MMPretrain's own ``AsymmetricLoss`` keeps its name).

Per sample, with p = softmax(z): the target class t adds -(1 - p_t)^g+ log p_t, every other class c adds
-p_m,c^g- log(1 - p_m,c), p_m = max(p - m, 0) (see :func:`mmdet_asl.ops.asl.asymmetric_loss_single_label`).
The paper's setting is g- = 4, g+ = 0 (m = 0), against the focal loss g+ = g- = 2.

Usage in an MMPretrain config::

    model = dict(head=dict(type='LinearClsHead', num_classes=200, in_channels=2048,
                           loss=dict(type='AsymmetricLossSingleLabel', gamma_pos=0., gamma_neg=4.)))
"""
from typing import Optional

import torch
from torch import Tensor, nn

from mmpretrain.registry import MODELS

from ...ops.asl import asymmetric_loss_single_label
from ...ops.asl.checks import check_loss_params

REDUCTIONS = ('none', 'mean', 'sum')


@MODELS.register_module()
class AsymmetricLossSingleLabel(nn.Module):
    """Softmax ASL with MMPretrain's loss interface ``forward(cls_score, label, weight, avg_factor, ...)``.

    Args:
        gamma_pos (float): gamma+ of the target class. Default 0.
        gamma_neg (float): gamma- of the other classes. Default 4.
        clip (float): probability margin m of the other classes. Default 0.
        eps (float): floor of the probabilities inside the logs. Default 1e-8.
        reduction (str): 'none' | 'mean' | 'sum'. 'mean' = sum / avg_factor (MMPretrain's heads pass
            avg_factor = N), or the mean over samples without avg_factor.
        loss_weight (float): multiplier. Default 1.

    ``label`` is (N,) integer class indices (an (N, 1) tensor is flattened). Soft (N, C) targets (Mixup,
    CutMix) are not supported and raise ``ValueError``. ``weight`` is an optional (N,) sample weight.
    """

    def __init__(self, gamma_pos: float = 0.0, gamma_neg: float = 4.0, clip: float = 0.0, eps: float = 1e-8,
                 reduction: str = 'mean', loss_weight: float = 1.0):
        super().__init__()
        check_loss_params(gamma_pos, gamma_neg, clip, eps, None, 'full')
        if reduction not in REDUCTIONS:
            raise ValueError(f'reduction must be one of {REDUCTIONS}, got {reduction!r}')
        self.gamma_pos, self.gamma_neg = float(gamma_pos), float(gamma_neg)
        self.clip, self.eps = float(clip), float(eps)
        self.reduction = reduction
        self.loss_weight = float(loss_weight)

    def extra_repr(self) -> str:
        return (f'gamma_pos={self.gamma_pos}, gamma_neg={self.gamma_neg}, clip={self.clip}, eps={self.eps}, '
                f'reduction={self.reduction!r}, loss_weight={self.loss_weight}')

    def forward(self, cls_score: Tensor, label: Tensor, weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None, reduction_override: Optional[str] = None, **kwargs) -> Tensor:
        if reduction_override not in (None, ) + REDUCTIONS:
            raise ValueError(f'reduction_override must be None or one of {REDUCTIONS}, got {reduction_override!r}')
        reduction = reduction_override or self.reduction
        if label.dim() == 2 and label.shape[1] == 1:
            label = label.flatten()
        if label.dim() != 1 or label.is_floating_point():
            raise ValueError('AsymmetricLossSingleLabel needs (N,) integer class indices; got '
                             f'{tuple(label.shape)} {label.dtype} (soft targets from Mixup/CutMix are not supported)')
        loss = asymmetric_loss_single_label(cls_score, label.long(), gamma_pos=self.gamma_pos,
                                            gamma_neg=self.gamma_neg, clip=self.clip, eps=self.eps)
        if weight is not None:
            weight = weight.float().flatten()
            if weight.numel() != loss.numel():
                raise ValueError(f'weight must be (N,) = ({loss.numel()},), got {tuple(weight.shape)}')
            loss = loss * weight.to(loss.dtype)
        if reduction == 'sum':
            if avg_factor is not None:
                raise ValueError('avg_factor can not be used with reduction="sum"')
            loss = loss.sum()
        elif reduction == 'mean':
            loss = loss.sum() / (avg_factor + torch.finfo(torch.float32).eps) if avg_factor is not None \
                else loss.mean()
        return self.loss_weight * loss
