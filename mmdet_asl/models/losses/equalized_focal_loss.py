"""``EqualizedFocalLoss`` (EFL, Li et al., CVPR 2022) registered in MMDetection's ``MODELS``: a drop-in for
``FocalLoss`` in sigmoid dense heads (FCOS, ATSS, RetinaNet, ...) whose focusing grows, per class, with the
imbalance of the gradients that class's positives and negatives received so far.

Config::

    custom_imports = dict(imports=['mmdet_asl'], allow_failed_imports=False)
    model = dict(bbox_head=dict(loss_cls=dict(
        type='EqualizedFocalLoss', use_sigmoid=True, num_classes=1203, gamma_b=2.0, scale_factor=8.0, alpha=0.25,
        loss_weight=1.0)))

The dense heads read ``use_sigmoid`` from this dict (without the key they build C + 1 softmax channels), so
it is written out.
"""
from typing import Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from mmdet.models.losses.utils import weight_reduce_loss
from mmdet.registry import MODELS

from ...ops.asl.checks import check_avg_factor, check_bool, check_layout, check_real, check_values
from .utils import Float64BuffersMixin, check_reduction, resolve_reduction


@MODELS.register_module()
class EqualizedFocalLoss(Float64BuffersMixin, nn.Module):
    r"""Equalized Focal Loss (Li et al., "Equalized Focal Loss for Dense Long-Tailed Object Detection",
    CVPR 2022, Sec. 3.2), MMDetection ``FocalLoss`` interface.

    For the logit z of class j with target t (1 for a positive, 0 for a negative) and p = sigmoid(z), the form
    implemented is the paper's final one, focusing factor and weighting factor together:

        EFL = alpha_t * (gamma_j / gamma_b) * (1 - p_t)^gamma_j * BCE(z, t),
        gamma_j = gamma_b + gamma_v_j,  gamma_v_j = s * (1 - g_j),

    with alpha_t = alpha for positives and 1 - alpha for negatives, 1 - p_t = |t - p| (soft dense targets use
    FocalLoss's (1 - p) t + p (1 - t)), BCE(z, t) = -log p_t. gamma_j and gamma_j / gamma_b are constants of
    the call (computed from the statistics, no gradient through them); the gradient flows through
    (1 - p_t)^gamma_j and BCE as in FocalLoss. With s = 0 (or g_j = 1) it is FocalLoss(gamma=gamma_b, alpha).

    g_j is the accumulated ratio of the positive to the negative gradient magnitude of class j,
    ``clamp(pos_grad_j / (neg_grad_j + 1e-10), 0, 1)``, where ``pos_grad_j`` (``neg_grad_j``) is the sum, over
    every backward since the start of training, of |dL/dz_ij| over the samples i that are positives
    (negatives) of class j; a soft target t splits |dL/dz| into t and 1 - t parts. The statistics come from a
    hook on the logits of each call (no second backward): L is this loss's value as the head returns it
    (loss_weight and avg_factor included), and elements with weight 0 add nothing. Under torch.distributed
    the sums of one backward are all-reduced over the ranks before they are added, so every rank holds the
    same statistics and the same gamma_j: every rank must run the loss's backward in each iteration (as DDP
    requires anyway). A backward whose gradients are not finite (an fp16 GradScaler overflow step, skipped by
    the optimizer too) adds nothing. Under a GradScaler the gradients carry the loss scale, so iterations
    enter the sums in proportion to the scale at that time.

    At initialisation, a class without statistics (pos_grad_j = neg_grad_j = 0) has g_j = 1, hence
    gamma_j = gamma_b and weight 1: the first iteration is focal loss, as in the official implementation
    (ModelTC/EOD, ``efl.py``, whose ratio buffer starts at ones). From then on every class has neg_grad_j > 0
    (each sample is a negative of the classes it is not), and a class that has had no positive yet has
    g_j = 0, gamma_j = gamma_b + s.

    Args:
        use_sigmoid (bool): must be True (one sigmoid per class); write it in the config, where the dense heads
            read it to size their classifier.
        num_classes (int): C, the number of classes of the head (its ``cls_out_channels``); required, since
            the statistics are kept per class. pred must have C columns.
        gamma_b (float): gamma_b, the base focusing (focal loss's gamma), >= 0. Default 2. gamma_b = 0
            needs s = 0 (the weighting factor gamma_j / gamma_b is then 1).
        scale_factor (float): s, the scale of the variable focusing gamma_v_j, >= 0. Default 8.
        alpha (float): alpha in [0, 1], weight of the positives (1 - alpha for negatives). Default 0.25.
        reduction (str): 'none' | 'mean' | 'sum'.
        loss_weight (float): multiplier of the loss (finite, >= 0).
        validate (bool): check the input values at every call (label range, targets in [0, 1], finite
            logits, finite non-negative weights and avg_factor). Costs one host synchronisation per call.
            Default True.

    ``pos_grad`` and ``neg_grad`` are registered float64 buffers (they stay float64 under ``.half()``): they
    are saved in checkpoints and restored by ``--resume``; ``load_from`` (fine-tuning) also loads them.

    ``forward(pred, target, weight=None, avg_factor=None, reduction_override=None)`` takes ``pred`` (N, C)
    logits and ``target`` as (N,) class indices with background = C (MMDetection's convention) or (N, C) dense
    targets in [0, 1]; ``weight`` (N,), (N, C) or (N*C,). Reduction is ``mmdet``'s ``weight_reduce_loss``:
    mean = sum / (avg_factor + eps) with ``avg_factor``, element mean without; 'sum' with ``avg_factor`` is an
    error. fp16 / bf16 logits are computed in float32 and the loss is returned in float32.
    """

    # The official implementation's eps in g_j = pos_grad_j / (neg_grad_j + eps).
    RATIO_EPS = 1e-10

    def __init__(self,
                 use_sigmoid: bool = True,
                 num_classes: Optional[int] = None,
                 gamma_b: float = 2.0,
                 scale_factor: float = 8.0,
                 alpha: float = 0.25,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 validate: bool = True):
        super().__init__()
        if use_sigmoid is not True:
            raise ValueError('EqualizedFocalLoss only supports use_sigmoid=True (one sigmoid per class); '
                             f'got use_sigmoid={use_sigmoid!r}')
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError('num_classes must be a positive integer, the number of classes of the head (the '
                             f'statistics are kept per class), got {num_classes!r}')
        self.use_sigmoid = use_sigmoid
        self.num_classes = num_classes
        self.gamma_b = check_real('gamma_b', gamma_b, low=0.0)
        self.scale_factor = check_real('scale_factor (s)', scale_factor, low=0.0)
        if self.gamma_b == 0 and self.scale_factor > 0:
            raise ValueError(f'gamma_b = 0 needs scale_factor (s) = 0: the weighting factor gamma_j / gamma_b '
                             f'divides by gamma_b; got scale_factor={self.scale_factor}')
        self.alpha = check_real('alpha', alpha, 0.0, 1.0)
        check_reduction(reduction)
        self.reduction = reduction
        self.loss_weight = check_real('loss_weight', loss_weight, low=0.0)
        self.validate = check_bool('validate', validate)
        self.register_buffer('pos_grad', torch.zeros(num_classes, dtype=torch.float64))
        self.register_buffer('neg_grad', torch.zeros(num_classes, dtype=torch.float64))

    # Kept float64 whatever the module's dtype: the sums grow over the whole training, and in a lower precision
    # one iteration's increment would vanish against them.
    _FLOAT64_BUFFERS = ('pos_grad', 'neg_grad')

    def grad_ratio(self) -> Tensor:
        """g, (C,) float64: clamp(pos_grad / (neg_grad + eps), 0, 1); 1 for a class without statistics."""
        ratio = (self.pos_grad / (self.neg_grad + self.RATIO_EPS)).clamp(0.0, 1.0)
        empty = (self.pos_grad == 0) & (self.neg_grad == 0)
        return torch.where(empty, torch.ones_like(ratio), ratio)

    def class_gamma(self) -> Tensor:
        """gamma_j = gamma_b + s * (1 - g_j), (C,) float64: the focusing of the next call."""
        return self.gamma_b + self.scale_factor * (1.0 - self.grad_ratio())

    def extra_repr(self) -> str:
        return (f'num_classes={self.num_classes}, gamma_b={self.gamma_b}, scale_factor={self.scale_factor}, '
                f'alpha={self.alpha}, reduction={self.reduction!r}, loss_weight={self.loss_weight}, '
                f'validate={self.validate}')

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        if isinstance(target, (tuple, list)):
            raise TypeError('EqualizedFocalLoss got a tuple target (labels, quality scores), the form of the heads '
                            'built for QualityFocalLoss (GFL, RTMDet, TOOD); it takes (N,) class indices or (N, C) '
                            'targets as FocalLoss')
        reduction = resolve_reduction(reduction_override, self.reduction)
        target, weight, is_index = check_layout(pred, target, weight)
        if pred.shape[1] != self.num_classes:
            # A dense head reads use_sigmoid from the loss's config dict, not from the built loss: without the key
            # it builds C + 1 softmax channels.
            hint = (" (C + 1: the head built a softmax background channel; write use_sigmoid=True in loss_cls's "
                    'config)' if pred.shape[1] == self.num_classes + 1 else '')
            raise ValueError(f'pred (logits) has C = {pred.shape[1]} classes, but EqualizedFocalLoss was built with '
                             f'num_classes={self.num_classes} (its per-class statistics){hint}: num_classes must be '
                             "the head's number of classes")
        avg_factor = check_avg_factor(avg_factor)
        if self.validate:
            scale = avg_factor if isinstance(avg_factor, Tensor) else None
            check_values(pred, target, weight, scale, is_index)

        # fp16 / bf16 logits in float32: (1 - p_t)^gamma_j with gamma_j up to gamma_b + s underflows in fp16.
        dtype = torch.promote_types(pred.dtype, torch.float32)
        # The hook goes on an alias of the logits used by this loss alone, so that it sees dL/dz of this loss
        # (the paper's statistic), not the gradients other losses send into the same logits.
        z = pred.to(dtype) if pred.dtype != dtype else pred.view_as(pred)
        if is_index:
            # Background (label C) is a negative of every class: one-hot over C + 1, last column dropped.
            t = F.one_hot(target, self.num_classes + 1)[:, :self.num_classes].to(dtype)
        else:
            t = target.to(dtype)

        gamma = self.class_gamma().to(z.device, dtype)  # constants of this call: no gradient through them
        factor = gamma / self.gamma_b if self.gamma_b > 0 else torch.ones_like(gamma)
        prob = z.sigmoid()
        one_minus_pt = (1 - prob) * t + prob * (1 - t)  # 1 - p_t, as FocalLoss writes it
        alpha_t = self.alpha * t + (1 - self.alpha) * (1 - t)
        loss = F.binary_cross_entropy_with_logits(z, t, reduction='none') * (
            alpha_t * one_minus_pt.pow(gamma) * factor)
        if weight is not None:
            weight = weight.to(dtype)
        if isinstance(avg_factor, Tensor):
            avg_factor = avg_factor.to(dtype)
        loss = self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)

        if z.requires_grad:
            z.register_hook(self._collect_hook(t.detach()))
        return loss

    def _collect_hook(self, t: Tensor):
        """The hook that adds |dL/dz| of the positives and negatives of each class to the statistics."""

        def hook(grad: Tensor) -> None:
            mag = grad.detach().abs()
            stats = torch.stack([(mag * t).sum(0), (mag * (1 - t)).sum(0)]).to(torch.float64)
            if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
                dist.all_reduce(stats)  # every rank adds the same sums: identical gamma_j everywhere
            # No host synchronisation: a non-finite backward (GradScaler overflow) adds zeros.
            stats = torch.where(torch.isfinite(stats).all(), stats, torch.zeros_like(stats))
            stats = stats.to(self.pos_grad.device)
            self.pos_grad += stats[0]
            self.neg_grad += stats[1]

        return hook
