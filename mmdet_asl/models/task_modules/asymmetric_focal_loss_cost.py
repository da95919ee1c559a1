"""``AsymmetricFocalLossCost``: the classification matching cost of DETR-family assigners with ASL's asymmetry.

    custom_imports = dict(imports=['mmdet_asl'], allow_failed_imports=False)
    model = dict(train_cfg=dict(assigner=dict(type='HungarianAssigner', match_costs=[
        dict(type='AsymmetricFocalLossCost', gamma_pos=0.0, gamma_neg=4.0, clip=0.05, weight=2.0),
        dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
        dict(type='IoUCost', iou_mode='giou', weight=2.0)])))

A Hungarian assigner matches queries with the cost the loss will charge; with an ASL classification loss the cost
should charge the same asymmetric terms, or queries are matched by one criterion and trained by another.
"""
from typing import Optional, Union

import torch
from torch import Tensor

from mmdet.models.task_modules.assigners.match_cost import FocalLossCost
from mmdet.registry import TASK_UTILS

from ...ops.asl.checks import check_bool, check_real


@TASK_UTILS.register_module()
class AsymmetricFocalLossCost(FocalLossCost):
    """``FocalLossCost`` with ASL's focusing exponents and probability margin (Ben-Baruch et al., Eq. 5 and 7).

    For a query's probability p of a ground truth's class, with p_m = max(p - m, 0)::

        pos_cost = -log(p + eps) * alpha * (1 - p) ** gamma_pos
        neg_cost = -log(1 - p_m + eps) * (1 - alpha) * p_m ** gamma_neg
        cost     = (pos_cost - neg_cost) * weight

    (``binary_input``: the mask form, pos_cost and neg_cost summed over the pixels' targets and divided by their
    number.) With ``gamma_pos = gamma_neg = gamma`` and ``clip = 0`` it is ``FocalLossCost(alpha, gamma)``; those
    are the defaults.

    Args:
        gamma_pos (float, optional): gamma+ >= 0. Default: ``gamma``.
        gamma_neg (float, optional): gamma- >= 0. Default: ``gamma``.
        clip (float): probability margin m in [0, 1). Default 0.
        alpha (float): weight of the positive term in [0, 1], 1 - alpha for the negative one. Default 0.25.
        eps (float): added inside the logs, >= 0. Default 1e-12.
        binary_input (bool): the inputs are masks (``pred_instances.masks``, ``gt_instances.masks``), not
            scores and labels. Default False.
        weight (float): multiplier of the cost. Default 1.
        gamma (float, optional): FocalLossCost's exponent, the default of ``gamma_pos`` and ``gamma_neg``
            (2 if not given).
    """

    def __init__(self,
                 gamma_pos: Optional[float] = None,
                 gamma_neg: Optional[float] = None,
                 clip: float = 0.0,
                 alpha: Union[float, int] = 0.25,
                 eps: float = 1e-12,
                 weight: Union[float, int] = 1.0,
                 binary_input: bool = False,
                 gamma: Optional[float] = None) -> None:
        gamma = 2.0 if gamma is None else check_real('gamma', gamma, low=0.0)
        super().__init__(alpha=check_real('alpha', alpha, 0.0, 1.0), gamma=gamma,
                         eps=check_real('eps', eps, low=0.0), binary_input=check_bool('binary_input', binary_input),
                         weight=check_real('weight', weight))
        del self.gamma  # one exponent per side here
        self.gamma_pos = gamma if gamma_pos is None else check_real('gamma_pos', gamma_pos, low=0.0)
        self.gamma_neg = gamma if gamma_neg is None else check_real('gamma_neg', gamma_neg, low=0.0)
        self.clip = check_real('clip (the probability margin m)', clip, 0.0, 1.0, high_open=True)

    def _pos_neg_costs(self, logits: Tensor):
        p = logits.sigmoid()
        p_m = (p - self.clip).clamp(min=0)                                               # Eq. 5
        neg_cost = -(1 - p_m + self.eps).log() * (1 - self.alpha) * p_m.pow(self.gamma_neg)  # Eq. 7: L-
        pos_cost = -(p + self.eps).log() * self.alpha * (1 - p).pow(self.gamma_pos)          # Eq. 7: L+
        return pos_cost, neg_cost

    def _focal_loss_cost(self, cls_pred: Tensor, gt_labels: Tensor) -> Tensor:
        """(num_queries, num_gt) cost of (num_queries, num_classes) logits against (num_gt,) labels."""
        if cls_pred.dim() != 2:
            raise ValueError(f'pred_instances.scores must be (num_queries, num_classes) logits, got shape '
                             f'{tuple(cls_pred.shape)}')
        if gt_labels.numel() and (gt_labels.min() < 0 or gt_labels.max() >= cls_pred.shape[1]):
            raise ValueError(f'gt_instances.labels must be in [0, {cls_pred.shape[1] - 1}] for '
                             f'{cls_pred.shape[1]} classes of scores, got min {int(gt_labels.min())}, '
                             f'max {int(gt_labels.max())}')
        pos_cost, neg_cost = self._pos_neg_costs(cls_pred)
        return (pos_cost[:, gt_labels] - neg_cost[:, gt_labels]) * self.weight

    def _mask_focal_loss_cost(self, cls_pred: Tensor, gt_labels: Tensor) -> Tensor:
        """(num_queries, num_gt) cost of mask logits (num_queries, ...) against binary masks (num_gt, ...)."""
        cls_pred = cls_pred.flatten(1)
        gt_labels = gt_labels.flatten(1).to(cls_pred.dtype)  # FocalLossCost's .float() fails on float64 masks
        if cls_pred.shape[1] != gt_labels.shape[1]:
            raise ValueError(f'pred_instances.masks and gt_instances.masks must have the same number of pixels, '
                             f'got {cls_pred.shape[1]} and {gt_labels.shape[1]}')
        pos_cost, neg_cost = self._pos_neg_costs(cls_pred)
        cost = torch.einsum('nc,mc->nm', pos_cost, gt_labels) + torch.einsum('nc,mc->nm', neg_cost, 1 - gt_labels)
        return cost / cls_pred.shape[1] * self.weight

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(gamma_pos={self.gamma_pos}, gamma_neg={self.gamma_neg}, clip={self.clip}, '
                f'alpha={self.alpha}, '
                f'eps={self.eps}, weight={self.weight}, binary_input={self.binary_input})')
