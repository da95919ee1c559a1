"""``AsymmetricQualityFocalLoss``: ASL's asymmetry in MMDetection's ``QualityFocalLoss`` (GFL, RTMDet, TOOD and
DETR-family heads).

    custom_imports = dict(imports=['mmdet_asl'], allow_failed_imports=False)
    model = dict(bbox_head=dict(loss_cls=dict(
        type='AsymmetricQualityFocalLoss', use_sigmoid=True, gamma_pos=2.0, gamma_neg=4.0, clip=0.0,
        loss_weight=1.0)))

It subclasses ``QualityFocalLoss``: the DETR heads' ``isinstance(loss_cls, QualityFocalLoss)`` branch then hands it
the IoU of each matched prediction, as it does to QFL.
"""
import math
from typing import Optional

import torch
from torch import Tensor

from mmdet.models.losses import QualityFocalLoss
from mmdet.models.losses.utils import weight_reduce_loss
from mmdet.registry import MODELS

from ...ops.asl.checks import check_bool, check_real
from ...ops.asl.function import apply_quality_focal_loss
from ...ops.asl.params import IMPL_OVERRIDE, IMPLS
from ...ops.asl.reference import quality_asymmetric_loss_reference
from .utils import check_reduction, check_use_sigmoid, refuse_softmax_dense_head, resolve_reduction

QUALITY_IMPLS = IMPLS + ('reference', )


class _SaturatingFloat(torch.autograd.Function):
    """``x.float()`` whose backward clamps the gradient into the range of ``x``'s dtype.

    A probability that rounded to 0 or 1 in half precision has a cross-entropy gradient of about 1e12 (the
    ``F.binary_cross_entropy`` floor), which is -inf/inf in fp16; the head's sigmoid then multiplies it by
    p (1 - p) = 0 and the logit gets NaN. Saturated, the logit's gradient is 0 there: what half precision can
    represent of p - q through a saturated sigmoid.
    """

    @staticmethod
    def forward(ctx, x):
        ctx.dtype = x.dtype
        return x.float()

    @staticmethod
    def backward(ctx, grad):
        limit = torch.finfo(ctx.dtype).max
        return grad.clamp(-limit, limit).to(ctx.dtype)


def saturating_float(x: Tensor) -> Tensor:
    return _SaturatingFloat.apply(x)


@MODELS.register_module()
class AsymmetricQualityFocalLoss(QualityFocalLoss):
    """Quality Focal Loss with ASL's asymmetric focusing and probability margin.

    A negative slot costs -sigma_m^gamma- log(1 - sigma_m), sigma_m = max(sigma - m, 0) (ASL, Eq. 5 and 7); the
    positive slot of quality q costs -|q - sigma|^gamma+ (q log sigma + (1 - q) log(1 - sigma)) (QFL). The term
    is :func:`mmdet_asl.ops.asl.reference.quality_asymmetric_loss_reference`; for logits it is computed by the fused
    kernel (:mod:`mmdet_asl.ops.asl.quality`: loss and analytic gradient in one pass) unless ``impl='reference'``.
    The defaults are QFL(beta=2): a
    config that changes only ``type`` trains as before; the asymmetry is what ``gamma_neg`` and ``clip`` add.

    Args:
        use_sigmoid (bool, optional): True, as for ``QualityFocalLoss``; write it in the config, where the heads
            read it (without it they build C + 1 softmax channels: refused when the head builds the loss).
        gamma_pos (float, optional): gamma+ >= 0, focusing of the positive slot. Default: ``beta``.
        gamma_neg (float, optional): gamma- >= 0, focusing of the negative slots. Default: ``beta``.
        clip (float): probability margin m in [0, 1) of the negative slots. Default 0.
        activated (bool): ``pred`` holds probabilities (TOOD's head), not logits. Default False.
        reduction (str): 'none' | 'mean' | 'sum', over anchors after the sum over classes (as QFL).
        loss_weight (float): multiplier of the loss (finite, >= 0).
        beta (float, optional): QFL's exponent, the default of ``gamma_pos`` and ``gamma_neg`` (2 if not given), so
            that a QFL config runs unchanged under the new ``type``; ``beta=2.0, gamma_neg=4.0`` focuses the
            negatives harder than QFL(2) and leaves the positives as they were.
        validate (bool): check input values at every call (finite scores, qualities in [0, 1], labels in
            [0, C], weights). One host synchronisation per call. Default True.
        impl (str): 'eager' (default: the fused kernel in plain PyTorch, no warm-up), 'compiled' (the same
            kernel fused by ``torch.compile``, compiled once per configuration) or 'reference' (the
            specification in plain autograd). ``MMDET_ASL_COMPILE=0/1`` in the environment overrides 'eager'
            and 'compiled'. Probabilities (``activated=True``), qualities that require a gradient and empty
            batches are computed by the reference whatever ``impl``.

    ``forward(pred, target, weight=None, avg_factor=None, reduction_override=None)``: ``pred`` (N, C);
    ``target`` one of QFL's forms: a tuple ``(labels (N,), score (N,))`` with background = C, or dense (N, C)
    qualities in [0, 1] (slots != 0 are positive); also (N,) integer labels, read as quality 1 (so that TOOD's
    ``initial_loss_cls`` can take it with ``activated=True``). ``weight``: per anchor, (N,).
    """

    def __init__(self,
                 use_sigmoid: Optional[bool] = None,
                 gamma_pos: Optional[float] = None,
                 gamma_neg: Optional[float] = None,
                 clip: float = 0.0,
                 activated: bool = False,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 beta: Optional[float] = None,
                 validate: bool = True,
                 impl: str = 'eager'):
        if not check_use_sigmoid('AsymmetricQualityFocalLoss', use_sigmoid):
            refuse_softmax_dense_head('AsymmetricQualityFocalLoss')
        check_reduction(reduction)
        super().__init__(use_sigmoid=True, reduction=reduction, loss_weight=check_real('loss_weight', loss_weight,
                                                                                        low=0.0),
                         activated=check_bool('activated', activated))
        del self.beta  # QFL's single exponent: here gamma_pos and gamma_neg
        # QFL's beta (default 2) is the exponent of the side whose gamma is not given.
        beta = 2.0 if beta is None else check_real('beta', beta, low=0.0)
        self.gamma_pos = beta if gamma_pos is None else check_real('gamma_pos', gamma_pos, low=0.0)
        self.gamma_neg = beta if gamma_neg is None else check_real('gamma_neg', gamma_neg, low=0.0)
        self.clip = check_real('clip (the probability margin m)', clip, 0.0, 1.0, high_open=True)
        self.validate = check_bool('validate', validate)
        if impl not in QUALITY_IMPLS:
            raise ValueError(f'impl must be one of {QUALITY_IMPLS}, got {impl!r}')
        self.impl = impl

    def extra_repr(self) -> str:
        return (f'gamma_pos={self.gamma_pos}, gamma_neg={self.gamma_neg}, clip={self.clip}, '
                f'activated={self.activated}, reduction={self.reduction!r}, loss_weight={self.loss_weight}, '
                f'impl={self.impl!r}')

    def forward(self,
                pred: Tensor,
                target,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        reduction = resolve_reduction(reduction_override, self.reduction)
        quality, positive, given = self._dense_target(pred, target)
        if weight is not None and (not isinstance(weight, Tensor) or tuple(weight.shape) != (pred.shape[0], )):
            raise ValueError(f'weight must be a per-anchor ({pred.shape[0]},) tensor for pred {tuple(pred.shape)}, '
                             f'got {tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__}')
        if self.validate:
            self._check_values(pred, given, weight)
        impl = self.impl if self.impl == 'reference' else (IMPL_OVERRIDE or self.impl)
        if not (self.activated or impl == 'reference' or pred.numel() == 0 or quality.requires_grad):
            return self._fused(pred, quality, positive, weight, avg_factor, reduction, impl)
        # fp16/bf16 scores are computed in float32: in half precision sigma^gamma and the logs of small
        # probabilities underflow. Autocast is off for the same reason (and it refuses F.binary_cross_entropy).
        work = saturating_float(pred) if pred.dtype in (torch.float16, torch.bfloat16) else pred
        with torch.autocast(device_type=work.device.type, enabled=False):
            loss = quality_asymmetric_loss_reference(work, quality.to(work.dtype), positive, self.gamma_pos,
                                                     self.gamma_neg, self.clip, self.activated).sum(dim=1)
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)

    def _fused(self, pred, quality, positive, weight, avg_factor, reduction: str, impl: str) -> Tensor:
        """The fused kernel, reducing as ``weight_reduce_loss`` does after the sum over classes: loss_weight and
        the mean's divisor are folded into the pass (``scale``), so that backward hands over its gradient."""
        w = None if weight is None else weight.reshape(-1, 1)
        if reduction == 'none':
            loss = apply_quality_focal_loss(pred, quality, positive, gamma_pos=self.gamma_pos,
                                            gamma_neg=self.gamma_neg, clip=self.clip, impl=impl).sum(dim=1)
            return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)
        if avg_factor is None:
            scale = self.loss_weight / pred.shape[0] if reduction == 'mean' else self.loss_weight
        elif reduction == 'mean':
            # As weight_reduce_loss: eps keeps avg_factor = 0 from dividing by zero.
            scale = self.loss_weight / (avg_factor + torch.finfo(torch.float32).eps)
        else:
            raise ValueError('avg_factor can not be used with reduction="sum"')
        return apply_quality_focal_loss(pred, quality, positive, w, gamma_pos=self.gamma_pos, gamma_neg=self.gamma_neg,
                                        clip=self.clip, reduce=True, scale=scale, impl=impl)

    def _dense_target(self, pred: Tensor, target):
        """(N, C) qualities, the (N, C) mask of positive slots and the quality values the target gave (all
        others are 0) from any accepted target form."""
        if not isinstance(pred, Tensor) or not pred.is_floating_point() or pred.dim() != 2:
            raise ValueError('pred must be an (N, C) floating tensor, got '
                             f'{tuple(pred.shape) if isinstance(pred, Tensor) else type(pred).__name__}')
        num, num_classes = pred.shape
        if isinstance(target, Tensor) and target.dim() == 2:
            if tuple(target.shape) != (num, num_classes):
                raise ValueError(f'target (dense qualities) must have the shape of pred {tuple(pred.shape)}, '
                                 f'got {tuple(target.shape)}')
            return target, target != 0, target
        if isinstance(target, Tensor) and target.dim() == 1 and not target.is_floating_point():
            labels, score = target, None
        elif isinstance(target, (tuple, list)) and len(target) == 2:
            labels, score = target
            if not isinstance(score, Tensor) or tuple(score.shape) != (num, ):
                raise ValueError(f'target[1] (quality scores) must have shape ({num},) for pred '
                                 f'{tuple(pred.shape)}, got {getattr(score, "shape", type(score).__name__)}')
        else:
            raise TypeError('target must be a tuple (labels (N,), scores (N,)), (N, C) dense qualities or (N,) '
                            f'integer labels, got {type(target).__name__}')
        if not isinstance(labels, Tensor) or labels.is_floating_point() or tuple(labels.shape) != (num, ):
            raise ValueError(f'labels must be an integer ({num},) tensor for pred {tuple(pred.shape)}, got '
                             f'{getattr(labels, "dtype", type(labels).__name__)} {getattr(labels, "shape", "")}')
        labels = labels.long()
        if self.validate and labels.numel() and not bool(((labels >= 0) & (labels <= num_classes)).all()):
            bad = labels[(labels < 0) | (labels > num_classes)]
            raise ValueError(f'labels must be in [0, {num_classes}] ({num_classes} = background), got '
                             f'{bad.numel()} out of range, e.g. {bad[0].item()}')
        pos = torch.nonzero(labels < num_classes).squeeze(1)
        quality = pred.new_zeros(pred.shape)
        positive = torch.zeros(pred.shape, dtype=torch.bool, device=pred.device)
        given = pred.new_ones(0) if score is None else score[pos]
        quality[pos, labels[pos]] = 1 if score is None else given.to(quality.dtype)
        positive[pos, labels[pos]] = True
        return quality, positive, given

    def _check_values(self, pred: Tensor, quality: Tensor, weight: Optional[Tensor]) -> None:
        """Finite scores (probabilities in [0, 1] when activated), qualities in [0, 1], finite weights >= 0.

        One pass over pred (its minimum and maximum: NaN propagates into both, inf into one), one over the
        qualities the target gave, one host synchronisation; pred's non-finite values are counted on failure only.
        """
        z = pred.detach()
        zero = z.new_zeros(())
        stats = list(torch.aminmax(z)) if z.numel() else [zero, zero]
        stats += list(torch.aminmax(quality.detach())) if quality.numel() else [zero, zero]
        if weight is not None and weight.numel():
            stats += [weight.detach().amin(), (~torch.isfinite(weight.detach())).sum()]
        values = torch.stack([s.to(torch.float64) for s in stats]).tolist()
        if not (math.isfinite(values[0]) and math.isfinite(values[1])):
            count = int((~torch.isfinite(z)).sum())
            raise ValueError(f'pred contains {count} non-finite value(s) (NaN or inf) out of {z.numel()}')
        if self.activated and not 0 <= values[0] <= values[1] <= 1:
            raise ValueError(f'pred must hold probabilities in [0, 1] with activated=True, got min {values[0]}, '
                             f'max {values[1]}')
        if not 0 <= values[2] <= values[3] <= 1:
            raise ValueError(f'target qualities must be in [0, 1], got min {values[2]}, max {values[3]}')
        if len(values) > 4 and (values[4] < 0 or values[5]):
            raise ValueError(f'weight must be finite and >= 0, got min {values[4]}')
