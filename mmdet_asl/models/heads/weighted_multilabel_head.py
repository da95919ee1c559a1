"""Multi-label heads that pass a per-label weight to the loss (registered in MMPretrain's ``MODELS``).

MMPretrain's ``MultiLabelClsHead._get_loss`` calls ``loss(cls_score, target, avg_factor=N)`` with no weight,
so a partial-label weight (Open Images: untagged labels as down-weighted negatives) never reaches the loss.
These heads stack ``data_sample.gt_label_weight`` (C,) into an (N, C) weight and pass ``weight=``. Samples
without the field get weight 1. Use a loss that accepts (N, C) weights, e.g. ``mmdet.AsymmetricLoss``
(MMPretrain's own losses only take (N,) sample weights).
"""
from typing import List

import numpy as np
import torch

from mmpretrain.models.heads import MultiLabelClsHead, MultiLabelLinearClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample, label_to_onehot

WEIGHT_KEY = 'gt_label_weight'


class _PerLabelWeightMixin:

    def _get_loss(self, cls_score: torch.Tensor, data_samples: List[DataSample], **kwargs):
        num_classes = cls_score.size(-1)
        if 'gt_score' in data_samples[0]:
            target = torch.stack([s.gt_score.float() for s in data_samples])
        else:
            target = torch.stack([label_to_onehot(s.gt_label, num_classes) for s in data_samples]).float()
        target = target.to(cls_score.device)
        weight = None
        if any(WEIGHT_KEY in s for s in data_samples):
            rows = []
            for s in data_samples:
                w = s.get(WEIGHT_KEY) if WEIGHT_KEY in s else np.ones(num_classes, dtype=np.float32)
                w = torch.as_tensor(np.asarray(w) if not isinstance(w, torch.Tensor) else w,
                                    dtype=cls_score.dtype).flatten()
                if w.numel() != num_classes:
                    raise ValueError(f'{WEIGHT_KEY} has {w.numel()} values, the head has {num_classes} classes')
                rows.append(w)
            weight = torch.stack(rows).to(cls_score.device)
        if 'weight' in kwargs:
            raise ValueError(f'{type(self).__name__} builds the loss weight from data_samples.{WEIGHT_KEY}; '
                             'do not pass weight= as well')
        loss = self.loss_module(cls_score, target, weight=weight, avg_factor=cls_score.size(0), **kwargs)
        return dict(loss=loss)


@MODELS.register_module()
class WeightedMultiLabelClsHead(_PerLabelWeightMixin, MultiLabelClsHead):
    """``MultiLabelClsHead`` whose loss receives ``weight`` (N, C) from ``data_samples.gt_label_weight``."""


@MODELS.register_module()
class WeightedMultiLabelLinearClsHead(_PerLabelWeightMixin, MultiLabelLinearClsHead):
    """``MultiLabelLinearClsHead`` whose loss receives ``weight`` (N, C) from ``data_samples.gt_label_weight``."""
