"""Fault injection: a detection training (ASL + adaptive gamma-) killed with SIGKILL in the middle of an epoch
and resumed from its last checkpoint ends with the same weights and gamma- as an uninterrupted run; a
checkpoint truncated while being written is refused on resume with an error naming it, and the previous
checkpoint still resumes."""
import os
import os.path as osp
import signal
import subprocess
import sys

import pytest
import torch
from mmengine.runner import Runner

import mmdet_asl  # noqa: F401
from mmdet_asl.compat import CheckpointLoadError

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from tiny_detection import ROOT, make_coco, tiny_config  # noqa: E402

EPOCHS, ITERS_PER_EPOCH = 3, 4
KILL_AT = ITERS_PER_EPOCH * 2 + 2  # the second iteration of the third epoch: epoch_2.pth is the last checkpoint

KILL_HOOK = '''
import os, signal
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class SigkillAfterIter(Hook):
    """Kill the training process (no clean-up, as an out-of-memory kill or a lost node would) after an iteration."""

    def __init__(self, after_iter):
        self.after_iter = after_iter

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.after_iter:
            os.kill(os.getpid(), signal.SIGKILL)
'''


def _train(cfg):
    runner = Runner.from_cfg(cfg)
    runner.train()
    return {k: v.clone() for k, v in runner.model.state_dict().items()}, _gamma(runner.model)


def _gamma(model):
    """gamma- of the detector's ASL after training (the adaptive controller's latest value)."""
    from mmdet_asl.models.losses import AsymmetricLoss
    losses = [m for m in model.modules() if isinstance(m, AsymmetricLoss)]
    assert len(losses) == 1
    return float(torch.as_tensor(losses[0].gamma_neg).double().mean())


@pytest.fixture
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the killed run is a separate process with one thread: same reduction order
    yield
    torch.set_num_threads(threads)


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path, single_thread):
    data = str(tmp_path / 'data')
    make_coco(data)
    reference, reference_gamma = _train(tiny_config(data, str(tmp_path / 'reference'), EPOCHS))
    assert reference_gamma != 2.0  # the adaptive controller moved gamma-

    # The same training in its own process, killed by SIGKILL after iteration KILL_AT.
    (tmp_path / 'killhook.py').write_text(KILL_HOOK)
    work = str(tmp_path / 'killed')
    cfg = tiny_config(data, work, EPOCHS, extra_hooks=[dict(type='SigkillAfterIter', after_iter=KILL_AT)])
    cfg.custom_imports = dict(imports=['mmdet_asl', 'killhook'], allow_failed_imports=False)
    cfg.dump(str(tmp_path / 'killed.py'))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]), MMDET_ASL_COMPILE='0',
               OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'train.py'), str(tmp_path / 'killed.py')],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert sorted(f for f in os.listdir(work) if f.endswith('.pth')) == ['epoch_1.pth', 'epoch_2.pth']
    assert not [f for f in os.listdir(work) if f.endswith('.tmp')]

    # A checkpoint cut off while being written (as a plain, non-atomic write leaves it) is refused on resume,
    # naming the file.
    last = osp.join(work, 'epoch_2.pth')
    truncated = osp.join(work, 'epoch_3.pth')
    with open(last, 'rb') as src, open(truncated, 'wb') as dst:
        dst.write(src.read()[:osp.getsize(last) // 2])
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write(truncated)
    resume_cfg = tiny_config(data, work, EPOCHS)
    resume_cfg.resume = True
    with pytest.raises(CheckpointLoadError, match='not a readable PyTorch checkpoint') as info:
        _train(resume_cfg)
    assert truncated in str(info.value)

    # The previous checkpoint is intact: resuming from it finishes the run exactly as the uninterrupted one.
    os.remove(truncated)
    resume_cfg = tiny_config(data, work, EPOCHS)
    resume_cfg.resume, resume_cfg.load_from = True, last
    runner = Runner.from_cfg(resume_cfg)
    runner.train()
    resumed = runner.model.state_dict()
    assert runner.iter == EPOCHS * ITERS_PER_EPOCH and runner.epoch == EPOCHS
    assert _gamma(runner.model) == pytest.approx(reference_gamma, abs=1e-6)
    worst = max((resumed[k].float() - reference[k].float()).abs().max().item() for k in reference)
    assert worst < 1e-5, f'resumed weights differ from the uninterrupted run by up to {worst}'
