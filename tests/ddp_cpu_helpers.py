"""Imported by the 2-process CPU training of tests/test_launchers.py (through the config's custom_imports).

* MMEngine's pytorch launcher calls ``torch.cuda.set_device(LOCAL_RANK)`` before creating the process group,
  which raises on a machine without a GPU; there it does nothing (gloo needs no device).
* ``RankWeightsHook`` saves every rank's model state after training, so the test can compare the ranks.
"""
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

if not torch.cuda.is_available():
    torch.cuda.set_device = lambda device: None


@HOOKS.register_module()
class RankWeightsHook(Hook):
    """Save ``rank<R>_before.pth`` / ``rank<R>_after.pth`` (the unwrapped model's state dict) in the work dir."""

    def _save(self, runner, when):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        torch.save(model.state_dict(), osp.join(runner.work_dir, f'rank{get_rank()}_{when}.pth'))

    def before_train(self, runner):
        self._save(runner, 'before')

    def after_train(self, runner):
        self._save(runner, 'after')
