"""``AsymmetricVarifocalLoss``: ASL's probability margin and gamma- in MMDetection's ``VarifocalLoss`` (VFNet).

    custom_imports = dict(imports=['mmdet_asl'], allow_failed_imports=False)
    model = dict(bbox_head=dict(loss_cls=dict(
        type='AsymmetricVarifocalLoss', use_sigmoid=True, alpha=0.75, gamma_neg=2.0, clip=0.05,
        iou_weighted=True, loss_weight=1.0)))

VFNet's targets are dense (N, C) IoU-aware scores, and VFL weights a positive by its target q (not by a power of
|q - p| as QFL does), so ``AsymmetricQualityFocalLoss`` can not express it; this class keeps VFL's positive term
and gives its negatives ASL's L- (Eq. 7).
"""
from typing import Optional

import torch
from torch import Tensor

from mmdet.models.losses import VarifocalLoss
from mmdet.models.losses.utils import weight_reduce_loss
from mmdet.registry import MODELS

from ...ops.asl.checks import check_bool, check_real
from ...ops.asl.reference import varifocal_asymmetric_loss_reference
from .utils import check_reduction, resolve_reduction


@MODELS.register_module()
class AsymmetricVarifocalLoss(VarifocalLoss):
    """Varifocal Loss whose negatives cost alpha * ASL's L-: -alpha p_m^gamma- log(1 - p_m), p_m = max(p - m, 0).

    Positives (target q > 0) cost q * BCE(p, q) as in VFL (BCE(p, q) without ``iou_weighted``). With ``clip=0`` and
    ``gamma_neg`` = VFL's ``gamma`` it equals ``VarifocalLoss`` in value and gradient; those are the defaults.
    The term is :func:`mmdet_asl.ops.asl.reference.varifocal_asymmetric_loss_reference`.

    Args:
        use_sigmoid (bool): must be True, as for ``VarifocalLoss``.
        alpha (float): weight of the negatives, >= 0 (VFL's alpha). Default 0.75.
        gamma_neg (float): gamma- >= 0, focusing of the negatives (VFL's gamma). Default 2.
        gamma (float, optional): VFL's name for ``gamma_neg``, so that a VFL config needs only a new ``type``.
            Give one of the two.
        clip (float): probability margin m in [0, 1) of the negatives. Default 0.
        iou_weighted (bool): weight positives by their target q. Default True.
        reduction (str): 'none' | 'mean' | 'sum' over the (N, C) elements.
        loss_weight (float): multiplier of the loss (finite, >= 0).
        validate (bool): check input values at every call (finite logits, targets in [0, 1], weights). One host
            synchronisation per call. Default True.

    ``forward(pred, target, weight=None, avg_factor=None, reduction_override=None)``: ``pred`` (N, C) logits,
    ``target`` (N, C) IoU targets in [0, 1], ``weight`` (N, C) or (N, 1).
    """

    def __init__(self,
                 use_sigmoid: bool = True,
                 alpha: float = 0.75,
                 gamma_neg: Optional[float] = None,
                 clip: float = 0.0,
                 iou_weighted: bool = True,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 gamma: Optional[float] = None,
                 validate: bool = True):
        if use_sigmoid is not True:
            raise ValueError('AsymmetricVarifocalLoss only supports use_sigmoid=True (sigmoid per class); '
                             f'got use_sigmoid={use_sigmoid!r}')
        check_reduction(reduction)
        if gamma is not None and gamma_neg is not None:
            raise ValueError(f'give gamma_neg or gamma (its VarifocalLoss name), not both: got gamma_neg={gamma_neg}, '
                             f'gamma={gamma}')
        gamma_neg = check_real('gamma_neg' if gamma is None else 'gamma',
                               2.0 if gamma is None and gamma_neg is None else (gamma_neg if gamma is None else gamma),
                               low=0.0)
        super().__init__(use_sigmoid=True, alpha=check_real('alpha', alpha, low=0.0), gamma=gamma_neg,
                         iou_weighted=check_bool('iou_weighted', iou_weighted), reduction=reduction,
                         loss_weight=check_real('loss_weight', loss_weight, low=0.0))
        self.clip = check_real('clip (the probability margin m)', clip, 0.0, 1.0, high_open=True)
        self.validate = check_bool('validate', validate)

    @property
    def gamma_neg(self) -> float:
        return self.gamma

    def extra_repr(self) -> str:
        return (f'alpha={self.alpha}, gamma_neg={self.gamma}, clip={self.clip}, iou_weighted={self.iou_weighted}, '
                f'reduction={self.reduction!r}, loss_weight={self.loss_weight}')

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        reduction = resolve_reduction(reduction_override, self.reduction)
        if not isinstance(pred, Tensor) or not pred.is_floating_point() or pred.dim() != 2:
            raise ValueError('pred must be an (N, C) floating tensor, got '
                             f'{tuple(pred.shape) if isinstance(pred, Tensor) else type(pred).__name__}')
        if not isinstance(target, Tensor) or tuple(target.shape) != tuple(pred.shape):
            raise ValueError(f'target must be dense (N, C) IoU targets of the shape of pred {tuple(pred.shape)}, got '
                             f'{tuple(target.shape) if isinstance(target, Tensor) else type(target).__name__}')
        num, num_classes = pred.shape
        if weight is not None and (not isinstance(weight, Tensor) or weight.dim() != 2
                                   or tuple(weight.shape) not in ((num, num_classes), (num, 1))):
            raise ValueError(f'weight must have shape ({num}, {num_classes}) or ({num}, 1) for pred '
                             f'{tuple(pred.shape)}, got '
                             f'{tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__}')
        if self.validate:
            self._check_values(pred, target, weight)
        # fp16/bf16 logits are computed in float32 (p^gamma and small probabilities underflow in half precision).
        work = pred.float() if pred.dtype in (torch.float16, torch.bfloat16) else pred
        with torch.autocast(device_type=work.device.type, enabled=False):
            loss = varifocal_asymmetric_loss_reference(work, target.to(work.dtype), self.alpha, self.gamma, self.clip,
                                                       self.iou_weighted)
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)

    @staticmethod
    def _check_values(pred: Tensor, target: Tensor, weight: Optional[Tensor]) -> None:
        """Finite logits, targets in [0, 1], finite weights >= 0 (one host synchronisation)."""
        if not pred.numel():
            return
        stats = [(~torch.isfinite(pred.detach())).sum(), target.detach().amin(), target.detach().amax()]
        if weight is not None and weight.numel():
            stats += [weight.detach().amin(), (~torch.isfinite(weight.detach())).sum()]
        values = torch.stack([s.to(torch.float64) for s in stats]).tolist()
        if values[0]:
            raise ValueError(f'pred contains {int(values[0])} non-finite value(s) (NaN or inf) out of {pred.numel()}')
        if not 0 <= values[1] <= values[2] <= 1:
            raise ValueError(f'targets must be in [0, 1], got min {values[1]}, max {values[2]}')
        if len(values) > 3 and (values[3] < 0 or values[4]):
            raise ValueError(f'weight must be finite and >= 0, got min {values[3]}')
