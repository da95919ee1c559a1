"""``AsymmetricLoss`` registered in MMDetection's ``MODELS``: a drop-in for ``FocalLoss``.

Detection configs (FCOS, ATSS, RetinaNet, ... dense heads)::

    custom_imports = dict(imports=['mmdet_asl'], allow_failed_imports=False)
    model = dict(bbox_head=dict(loss_cls=dict(
        type='AsymmetricLoss', use_sigmoid=True, gamma_pos=1.0, gamma_neg=2.0, clip=0.0, loss_weight=1.0)))

MMPretrain configs already have their own ``AsymmetricLoss`` in MMPretrain's registry; ours is reached
across scopes, without a clash, as ``type='mmdet.AsymmetricLoss'``.
"""
from typing import Optional

import torch
from torch import Tensor, nn

from mmdet.registry import MODELS

from ...functional import asymmetric_loss, check_loss_params, probability_gap

REDUCTIONS = ('none', 'mean', 'sum')


@MODELS.register_module()
class AsymmetricLoss(nn.Module):
    """Asymmetric Loss (Ben-Baruch et al., ICCV 2021, Eq. 7), MMDetection ``FocalLoss`` interface.

    Args:
        use_sigmoid (bool): must be True (dense heads size ``cls_out_channels`` from it).
        gamma_pos (float): gamma+, focusing of positives. Default 0.
        gamma_neg (float): gamma-, focusing of negatives. Default 4.
        clip (float): probability margin m in [0, 1) (Eq. 5). Default 0.05.
        eps (float): floor of the probabilities inside the logs. Default 1e-8.
        alpha (float, optional): static weighting, alpha for positives and 1 - alpha for negatives
            (FocalLoss's alpha; the paper's "FL + linear weighting"). Default None (no weighting).
        focusing_grad (str): 'full' (gradient through the focusing weight, Eq. 8) or 'detached'.
        reduction (str): 'none' | 'mean' | 'sum'.
        loss_weight (float): multiplier of the loss.
        probe (bool): collect the probability-gap sums (Eq. 9-10) in training, in the same pass as the
            loss. ``ProbabilityGapHook`` turns this on by itself; set it to use the sums yourself.

    gamma- is kept in a buffer (``gamma_neg_buffer``), so a value changed during training (the adaptive
    asymmetry of Eq. 11, driven by ``ProbabilityGapHook``) is saved in checkpoints and restored on resume.

    ``forward(pred, target, weight=None, avg_factor=None, reduction_override=None)`` takes ``pred``
    (N, C) logits and ``target`` as (N,) class indices with background = C (MMDetection's convention)
    or (N, C) dense targets in [0, 1]; ``weight`` (N,), (N, C) or (N*C,). Reduction follows
    ``mmdet.models.losses.weight_reduce_loss``: mean = sum / (avg_factor + eps) with ``avg_factor``,
    element mean without; 'sum' with ``avg_factor`` is an error.
    """

    def __init__(self,
                 use_sigmoid: bool = True,
                 gamma_pos: float = 0.0,
                 gamma_neg: float = 4.0,
                 clip: float = 0.05,
                 eps: float = 1e-8,
                 alpha: Optional[float] = None,
                 focusing_grad: str = 'full',
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 probe: bool = False):
        super().__init__()
        if use_sigmoid is not True:
            raise ValueError('AsymmetricLoss only supports use_sigmoid=True (sigmoid per label); '
                             f'got use_sigmoid={use_sigmoid!r}')
        check_loss_params(gamma_pos, gamma_neg, clip, eps, alpha, focusing_grad)
        if reduction not in REDUCTIONS:
            raise ValueError(f'reduction must be one of {REDUCTIONS}, got {reduction!r}')
        if isinstance(loss_weight, bool) or not isinstance(loss_weight, (int, float)):
            raise TypeError(f'loss_weight must be a real number, got {loss_weight!r}')
        self.use_sigmoid = use_sigmoid
        self.gamma_pos = float(gamma_pos)
        self.register_buffer('gamma_neg_buffer', torch.tensor(float(gamma_neg), dtype=torch.float64))
        self.clip = float(clip)
        self.eps = float(eps)
        self.alpha = None if alpha is None else float(alpha)
        self.focusing_grad = focusing_grad
        self.reduction = reduction
        self.loss_weight = float(loss_weight)
        self.probe = bool(probe)
        # Set by ProbabilityGapHook when it adapts gamma-: the kernel then takes the buffer itself, so a
        # new value recompiles nothing; otherwise a Python float (faster, specialised by torch.compile).
        self.gamma_neg_dynamic = False
        # Probability-gap sums since the last ``pop_probe_sums``; per iteration, so not checkpointed.
        self.register_buffer('probe_sums', torch.zeros(4, dtype=torch.float64), persistent=False)

    @property
    def gamma_neg(self) -> float:
        return float(self.gamma_neg_buffer)

    @gamma_neg.setter
    def gamma_neg(self, value: float) -> None:
        check_loss_params(self.gamma_pos, value, self.clip, self.eps, self.alpha, self.focusing_grad)
        self.gamma_neg_buffer.fill_(float(value))

    def pop_probe_sums(self) -> Tensor:
        """Return the probability-gap sums collected since the last call, and reset them."""
        sums = self.probe_sums.clone()
        self.probe_sums.zero_()
        return sums

    def probability_gap(self):
        """(p_t+, p_t-, Delta p) of the sums collected so far (without resetting them)."""
        return probability_gap(self.probe_sums)

    def extra_repr(self) -> str:
        return (f'gamma_pos={self.gamma_pos}, gamma_neg={self.gamma_neg}, clip={self.clip}, eps={self.eps}, '
                f'alpha={self.alpha}, focusing_grad={self.focusing_grad!r}, reduction={self.reduction!r}, '
                f'loss_weight={self.loss_weight}')

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        if reduction_override not in (None, ) + REDUCTIONS:
            raise ValueError(f'reduction_override must be None or one of {REDUCTIONS}, '
                             f'got {reduction_override!r}')
        reduction = reduction_override or self.reduction
        if reduction == 'sum' and avg_factor is not None:
            raise ValueError('avg_factor can not be used with reduction="sum"')
        reduce = reduction != 'none'
        probe = self.probe and self.training
        gamma_neg = self.gamma_neg_buffer if self.gamma_neg_dynamic else self.gamma_neg
        # loss_weight and the mean's divisor are folded into the fused pass (``scale``), so that backward
        # receives the saved gradient as is. avg_factor is a normaliser: no gradient flows into it.
        scale = self.loss_weight
        if reduction == 'mean':
            if avg_factor is None:
                scale = self.loss_weight / max(pred.numel(), 1)
            else:
                # As mmdet's weight_reduce_loss: eps keeps avg_factor = 0 from dividing by zero.
                scale = self.loss_weight / (avg_factor + torch.finfo(torch.float32).eps)
        loss = asymmetric_loss(pred, target, weight, gamma_pos=self.gamma_pos, gamma_neg=gamma_neg,
                               clip=self.clip, eps=self.eps, alpha=self.alpha,
                               focusing_grad=self.focusing_grad, reduce=reduce, return_stats=probe,
                               scale=scale)
        if probe:
            loss, sums = loss
            self.probe_sums += sums.to(self.probe_sums)
        return loss
