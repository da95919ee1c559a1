"""Probability-gap probe (paper Eq. 9-10) and adaptive asymmetry (Eq. 11) as one MMEngine hook.

Add to any MMDetection or MMPretrain config whose model uses our ``AsymmetricLoss``::

    custom_hooks = [dict(type='ProbabilityGapHook')]                        # probe only
    custom_hooks = [dict(type='ProbabilityGapHook',
                         adaptive=dict(target=0.1, lam=0.01, gamma_min=0., gamma_max=10.,
                                       warmup_iters=0))]                    # + adaptive gamma-

Every training iteration it logs ``asl_pt_pos`` (p_t+, the mean p over positive label slots),
``asl_pt_neg`` (p_t-, the mean 1 - p over negative slots) and ``asl_dp`` (Delta p = p_t+ - p_t-) through
MMEngine's message hub, so the text log, the JSON scalars and TensorBoard (when configured) all get them;
with ``adaptive`` also ``asl_gamma_neg``.

Design:
  * The statistics come from the loss's own forward (``AsymmetricLoss(probe=True)`` returns the sums
    from the same fused pass): no second forward pass. For detection heads the positive slots are the
    foreground label slots (label == class), everything else (background points included) is negative;
    slots with weight 0 (ignored anchors) are left out.
  * Under DDP the four sums (not means) are all-reduced, so Delta p is the global one and every rank
    computes the same update; gamma- is then broadcast from rank 0 as well, so the ranks cannot drift.
  * gamma- lives in the loss's ``gamma_neg_buffer``: it is part of the model's state dict, so checkpoints
    carry it and ``--resume`` continues the same trajectory. The hook itself keeps no state.
  * Sign of the update. The issue states Eq. 11 as gamma- <- gamma- + lam (Dp - Dp_target). Taken
    literally that moves gamma- *away* from the target (raising gamma- down-weights negatives, which
    raises Delta p; the paper's Table 3 has a higher target ending at a higher gamma-). We use the sign
    that drives Delta p towards the target: gamma- <- gamma- + lam (Dp_target - Dp), clipped to
    [gamma_min, gamma_max].
"""
import math
from typing import List, Optional

import torch
from mmengine import dist
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ..functional import probability_gap

ADAPTIVE_KEYS = {'target', 'lam', 'gamma_min', 'gamma_max', 'warmup_iters'}


def adaptive_gamma_update(gamma_neg: float, gap: float, target: float, lam: float, gamma_min: float,
                          gamma_max: float) -> float:
    """One step of the adaptive asymmetry (Eq. 11): gamma- + lam (target - Delta p), within bounds.

    A non-finite Delta p (a batch without positives) leaves gamma- unchanged.
    """
    if not math.isfinite(gap):
        return gamma_neg
    return min(max(gamma_neg + lam * (target - gap), gamma_min), gamma_max)


@HOOKS.register_module()
class ProbabilityGapHook(Hook):
    """Log p_t+, p_t-, Delta p every training iteration; optionally adapt gamma- (Eq. 11).

    Args:
        adaptive (dict, optional): ``target`` (Delta p target), ``lam`` (step, default 0.01),
            ``gamma_min``/``gamma_max`` (bounds, default 0 and 10), ``warmup_iters`` (iterations before
            the first update, default 0). None: probe only.
        prefix (str): prefix of the logged scalar names. Default 'asl_'.
    """

    priority = 'NORMAL'  # before LoggerHook (BELOW_NORMAL), so the scalars are logged the same iteration

    def __init__(self, adaptive: Optional[dict] = None, prefix: str = 'asl_'):
        if adaptive is not None:
            unknown = set(adaptive) - ADAPTIVE_KEYS
            if unknown:
                raise ValueError(f'adaptive has unknown keys {sorted(unknown)}; expected {sorted(ADAPTIVE_KEYS)}')
            if 'target' not in adaptive:
                raise ValueError('adaptive needs a target (the Delta p target of Eq. 11), e.g. target=0.1')
            adaptive = dict(dict(lam=0.01, gamma_min=0.0, gamma_max=10.0, warmup_iters=0), **adaptive)
            if not adaptive['lam'] > 0:
                raise ValueError(f"adaptive lam must be > 0, got {adaptive['lam']}")
            if not 0 <= adaptive['gamma_min'] <= adaptive['gamma_max']:
                raise ValueError('adaptive bounds must satisfy 0 <= gamma_min <= gamma_max, got '
                                 f"{adaptive['gamma_min']}, {adaptive['gamma_max']}")
            if not -1 <= adaptive['target'] <= 1:
                raise ValueError(f"adaptive target is a probability gap in [-1, 1], got {adaptive['target']}")
        self.adaptive = adaptive
        self.prefix = prefix
        self._losses: List[torch.nn.Module] = []

    @staticmethod
    def find_losses(model) -> List[torch.nn.Module]:
        from ..models.losses import AsymmetricLoss
        if is_model_wrapper(model):
            model = model.module
        return [m for m in model.modules() if isinstance(m, AsymmetricLoss)]

    def before_train(self, runner) -> None:
        self._losses = self.find_losses(runner.model)
        if not self._losses:
            raise RuntimeError('ProbabilityGapHook found no mmdet_asl AsymmetricLoss in the model. Use '
                               "loss type='AsymmetricLoss' (MMDetection) or 'mmdet.AsymmetricLoss' (MMPretrain); "
                               'CE is gamma_pos=gamma_neg=clip=0, focal loss gamma_pos=gamma_neg=gamma, clip=0.')
        for loss in self._losses:
            loss.probe = True
            loss.gamma_neg_dynamic = self.adaptive is not None
            loss.probe_sums.zero_()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        sums = torch.stack([loss.pop_probe_sums() for loss in self._losses]).sum(0)
        if dist.is_distributed():
            dist.all_reduce(sums, op='sum')  # sums and counts, so the gap is the global one
        pt_pos, pt_neg, gap = probability_gap(sums)
        hub = runner.message_hub
        for name, value in (('pt_pos', pt_pos), ('pt_neg', pt_neg), ('dp', gap)):
            if math.isfinite(value):
                hub.update_scalar(f'train/{self.prefix}{name}', value)
        if self.adaptive is None:
            return
        cfg = self.adaptive
        gamma = self._losses[0].gamma_neg
        if runner.iter + 1 > cfg['warmup_iters']:
            gamma = adaptive_gamma_update(gamma, gap, cfg['target'], cfg['lam'], cfg['gamma_min'],
                                          cfg['gamma_max'])
            if dist.is_distributed():
                value = torch.tensor([gamma], dtype=torch.float64, device=sums.device)
                dist.broadcast(value, src=0)
                gamma = float(value)
            for loss in self._losses:
                loss.gamma_neg = gamma
        hub.update_scalar(f'train/{self.prefix}gamma_neg', gamma)
