"""Probability-gap probe (paper Eq. 9-10) and adaptive asymmetry (Eq. 11) as one MMEngine hook.

Add to any MMDetection or MMPretrain config whose model uses our ``AsymmetricLoss``::

    custom_hooks = [dict(type='ProbabilityGapHook')]                                    # probe only
    custom_hooks = [dict(type='ProbabilityGapHook', adaptive=dict(target=0.1, lam=0.01))]  # + global gamma-
    custom_hooks = [dict(type='ProbabilityGapHook',                                     # per class, + margin
                         adaptive=dict(target=0.1, per_class=True, adapt=('gamma_neg', 'clip')))]

Every training iteration it logs ``asl_pt_pos`` (p_t+, the mean p over positive label slots),
``asl_pt_neg`` (p_t-, the mean 1 - p over negative slots) and ``asl_dp`` (Delta p = p_t+ - p_t-) through
MMEngine's message hub (text log, ``scalars.json``, TensorBoard when configured); with ``adaptive`` also
``asl_gamma_neg`` and/or ``asl_clip`` (their mean over classes in per-class mode, whose full vectors go to
``<log_dir>/probability_gap_per_class.jsonl``). With several ASL losses in the model, each one's scalars
carry its module name: ``asl_dp/bbox_head.loss_cls``.

Design:
  * The statistics come from the loss's own forward (``probe``: the sums come out of the same fused pass);
    no second forward. Slots with weight 0 (ignored anchors) are left out; for detection heads background
    points are negatives of every class.
  * The hook talks to a loss through its public attributes only: ``probe`` and ``probe_per_class``
    (switches), ``pop_probe_sums()`` ((4,) or (C, 4) sums since the last call), and ``gamma_neg`` and
    ``clip`` (read at build, written by the controller: a float, or a (C,) tensor per class).
  * Each adapted loss has its own controller (``asymmetry_controller.py``: the update rule, its sign, the
    smoothing), so two ASL losses never share a gamma-.
  * Under DDP the sums (not the means) of every loss are all-reduced in one call: every rank computes
    the same Delta p and so the same update, deterministically, from the same numbers.
  * The controllers' state is saved in the checkpoint (``checkpoint['probability_gap']``). ``--resume``
    restores it and continues the same trajectory. A fine-tune (``load_from``) starts from the config's
    gamma- and m (``adaptive.init='config'``, the default) or from the checkpoint's adapted state
    (``init='checkpoint'``), and logs which.
"""
import json
import os.path as osp
from typing import Dict, List, Optional

import torch
from mmengine import dist
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from .asymmetry_controller import (
    AsymmetryController,
    adaptive_gamma_update,
    check_adaptive_cfg,
    probability_gap_from_sums,
)

__all__ = ['ProbabilityGapHook', 'adaptive_gamma_update']
CHECKPOINT_KEY = 'probability_gap'
PER_CLASS_LOG = 'probability_gap_per_class.jsonl'


@HOOKS.register_module()
class ProbabilityGapHook(Hook):
    """Log p_t+, p_t-, Delta p every training iteration; optionally adapt gamma- and/or m (Eq. 11).

    Args:
        adaptive (dict, optional): None: probe only. Otherwise the controller's settings:
            ``target`` (Delta p target, or one per class), ``lam`` (gamma- step, default 0.01),
            ``gamma_min``/``gamma_max`` (bounds, default 0 and 10), ``warmup_iters`` (iterations before the
            first update, default 0), ``per_class`` (a gamma-/m per class, default False),
            ``min_positives`` (positive slots pooled before an update, default 1 global, 10 per class),
            ``adapt`` (what to drive: ``('gamma_neg',)``, ``('clip',)`` or both; default gamma- only),
            ``clip_lam``/``clip_min``/``clip_max`` (margin step and bounds, default 0.001, 0, 0.2),
            ``init`` (a fine-tune starts from the ``'config'`` values or the ``'checkpoint'``'s).
        prefix (str): prefix of the logged scalar names. Default 'asl_'.
        losses (list[str], optional): module names of the losses to probe (``'bbox_head.loss_cls'``);
            default every ``AsymmetricLoss`` of the model.
        per_class_interval (int): iterations between lines of the per-class log. Default 50.
    """

    priority = 'NORMAL'  # before LoggerHook (BELOW_NORMAL), so the scalars are logged the same iteration

    def __init__(self, adaptive: Optional[dict] = None, prefix: str = 'asl_', losses: Optional[List[str]] = None,
                 per_class_interval: int = 50):
        self.adaptive = None if adaptive is None else check_adaptive_cfg(adaptive)
        if not isinstance(prefix, str):
            raise TypeError(f'prefix must be a str, got {type(prefix).__name__}')
        if losses is not None and (not isinstance(losses, (list, tuple)) or not losses
                                   or not all(isinstance(n, str) for n in losses)):
            raise TypeError(f'losses must be None or a non-empty list of module names, got {losses!r}')
        if isinstance(per_class_interval, bool) or not isinstance(per_class_interval, int) \
                or per_class_interval < 1:
            raise ValueError(f'per_class_interval must be an integer >= 1, got {per_class_interval!r}')
        self.prefix = prefix
        self.loss_names = None if losses is None else list(losses)
        self.per_class_interval = per_class_interval
        self.per_class = bool(self.adaptive and self.adaptive['per_class'])
        self._losses: Dict[str, torch.nn.Module] = {}
        self.controllers: Dict[str, AsymmetryController] = {}
        self._configured: Dict[str, tuple] = {}
        self._loaded: Optional[dict] = None
        self._interval_sums: Dict[str, torch.Tensor] = {}

    # --------------------------------------------------------------------------------------- the model
    def find_losses(self, model) -> Dict[str, torch.nn.Module]:
        """The probed losses by module name; raise naming what is missing."""
        from ..models.losses import AsymmetricLoss
        if is_model_wrapper(model):
            model = model.module
        found = {name: m for name, m in model.named_modules() if isinstance(m, AsymmetricLoss)}
        if not found:
            raise RuntimeError('ProbabilityGapHook found no mmdet_asl AsymmetricLoss in the model. Use '
                               "loss type='AsymmetricLoss' (MMDetection) or 'mmdet.AsymmetricLoss' (MMPretrain); "
                               'CE is gamma_pos=gamma_neg=clip=0, focal loss gamma_pos=gamma_neg=gamma, clip=0.')
        if self.loss_names is not None:
            missing = [n for n in self.loss_names if n not in found]
            if missing:
                raise ValueError(f'ProbabilityGapHook losses={missing} are not AsymmetricLoss modules of the '
                                 f'model; it has {sorted(found)}')
            found = {n: found[n] for n in self.loss_names}
        return found

    def before_run(self, runner) -> None:
        # Before load_from/resume replace anything: these are the config's values.
        self._losses = self.find_losses(runner.model)
        self._configured = {name: (loss.gamma_neg, loss.clip) for name, loss in self._losses.items()}
        for other in getattr(runner, 'hooks', ()):
            if other is not self and isinstance(other, ProbabilityGapHook):
                shared = sorted(set(self.find_losses(runner.model) if other.loss_names is None else other.loss_names)
                                & set(self._losses))
                if shared:
                    raise ValueError(f'two ProbabilityGapHooks probe the same loss(es) {shared}: their sums would be '
                                     'split between them; give each hook its own losses=[...]')

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = checkpoint.get(CHECKPOINT_KEY)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.controllers:  # merged: several hooks may adapt disjoint losses
            checkpoint.setdefault(CHECKPOINT_KEY, {}).update(
                {name: c.state_dict() for name, c in self.controllers.items()})

    def before_train(self, runner) -> None:
        if not self._losses:
            self.before_run(runner)
        for loss in self._losses.values():
            loss.probe = True
            loss.probe_per_class = self.per_class
            if self.adaptive is not None:  # tensor inputs of the kernel: a new value recompiles nothing
                loss.gamma_neg_dynamic |= 'gamma_neg' in self.adaptive['adapt']
                loss.clip_dynamic |= 'clip' in self.adaptive['adapt']
            loss.pop_probe_sums()
        self._interval_sums = {}
        if self.adaptive is not None:
            self._start_controllers(runner)

    def _start_controllers(self, runner) -> None:
        resumed = runner.iter > 0  # resume() restored the loop's position; load_from starts at 0
        use_checkpoint = resumed or self.adaptive['init'] == 'checkpoint'
        saved = self._loaded if use_checkpoint else None
        for name, loss in self._losses.items():
            gamma_cfg, clip_cfg = self._configured[name]
            controller = AsymmetryController(self.adaptive, gamma_cfg, clip_cfg)
            if saved is not None and name in saved:
                controller.load_state_dict(saved[name], name=f"checkpoint['{CHECKPOINT_KEY}']['{name}']")
                source = 'the checkpoint (resumed)' if resumed else "the checkpoint (adaptive.init='checkpoint')"
            elif use_checkpoint:
                source = 'the config (the checkpoint has no adaptive state for this loss)'
            else:
                source = 'the config'
                unused = (self._loaded or {}).get(name)
                if unused is not None:
                    source += (f" (the checkpoint's adapted gamma-={_short(unused['gamma_neg'])}, "
                               f"m={_short(unused['clip'])} are not used; adaptive.init='checkpoint' would keep them)")
            self.controllers[name] = controller
            self._apply(name, ('gamma_neg', ) + tuple(k for k in self.adaptive['adapt'] if k != 'gamma_neg'))
            runner.logger.info(f'ProbabilityGapHook: {name} starts with gamma-={_short(controller.gamma_neg)}, '
                               f'm={_short(controller.clip)} from {source}')

    def _apply(self, name: str, keys) -> None:
        controller, loss = self.controllers[name], self._losses[name]
        for key in keys:
            value = getattr(controller, key)
            setattr(loss, key, float(value) if value.dim() == 0 else value.clone())

    # ------------------------------------------------------------------------------------ every iteration
    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        sums = self._reduced_sums()
        hub = runner.message_hub
        several = len(sums) > 1
        for name, loss_sums in sums.items():
            suffix = f'/{name}' if several else ''
            total = loss_sums.sum(0) if loss_sums.dim() == 2 else loss_sums
            pt_pos, pt_neg, gap = (float(v) for v in probability_gap_from_sums(total))
            for stat, value in (('pt_pos', pt_pos), ('pt_neg', pt_neg), ('dp', gap)):
                if value == value:  # NaN: nothing measured on that side this iteration
                    hub.update_scalar(f'train/{self.prefix}{stat}{suffix}', value)
            if self.adaptive is None:
                continue
            controller = self.controllers[name]
            controller.update(loss_sums, runner.iter)
            self._apply(name, self.adaptive['adapt'])
            for key in self.adaptive['adapt']:
                hub.update_scalar(f'train/{self.prefix}{key}{suffix}', float(getattr(controller, key).mean()))
            if self.per_class:
                self._log_per_class(runner, name, loss_sums)

    def _reduced_sums(self) -> Dict[str, torch.Tensor]:
        sums = {}
        for name, loss in self._losses.items():
            value = loss.pop_probe_sums().detach().to(torch.float64)
            if self.per_class and value.dim() != 2:
                raise RuntimeError(f'ProbabilityGapHook(adaptive.per_class=True): {name}.pop_probe_sums() '
                                   f'returned {tuple(value.shape)}, not per-class (C, 4) sums')
            sums[name] = value
        if dist.is_distributed():
            flat = torch.cat([s.reshape(-1) for s in sums.values()])
            dist.all_reduce(flat, op='sum')  # sums and counts: the gap and the update are the global ones
            parts = flat.split([s.numel() for s in sums.values()])
            sums = {name: part.view_as(s) for (name, s), part in zip(sums.items(), parts)}
        return sums

    def _log_per_class(self, runner, name: str, sums: torch.Tensor) -> None:
        pooled = self._interval_sums.get(name)
        self._interval_sums[name] = sums.cpu() if pooled is None else pooled + sums.cpu()
        if (runner.iter + 1) % self.per_class_interval or not dist.is_main_process():
            return
        pooled = self._interval_sums.pop(name)
        _, _, gap = probability_gap_from_sums(pooled)
        controller = self.controllers[name]
        line = dict(iter=runner.iter + 1, loss=name, positives=pooled[:, 1].tolist(),
                    dp=[None if g != g else g for g in gap.tolist()],
                    gamma_neg=controller.values('gamma_neg'), clip=controller.values('clip'))
        with open(osp.join(runner.log_dir, PER_CLASS_LOG), 'a') as f:
            f.write(json.dumps(line) + '\n')


def _short(value) -> str:
    value = torch.as_tensor(value, dtype=torch.float64)
    if value.dim() == 0:
        return f'{float(value):.4g}'
    return f'[{float(value.min()):.4g} .. {float(value.max()):.4g}] over {value.numel()} classes'
