"""Checkpoint loading refuses pickled code and damaged files with errors naming the file; MMEngine's own
checkpoints (message hub, numpy history buffers) still resume; checkpoint files are written atomically."""
import os
import pickle
import subprocess
import sys

import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint
from torch.utils.data import Dataset

import mmdet_asl  # noqa: F401  (installs the safe loader and the atomic backend)
from mmdet_asl.compat import AtomicLocalBackend, CheckpointLoadError, load_checkpoint_safely


class Linear(BaseModel):

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.fc(inputs)
        return dict(loss=((out - labels) ** 2).mean()) if mode == 'loss' else out


class Points(Dataset):

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(16, 4, generator=g), torch.randn(16, 2, generator=g)

    def __len__(self):
        return 16

    def __getitem__(self, i):
        return dict(inputs=self.x[i], labels=self.y[i])


def runner(work_dir, max_iters, resume=False):
    return Runner(model=Linear(), work_dir=str(work_dir), resume=resume,
                  train_dataloader=dict(dataset=Points(), sampler=dict(type='DefaultSampler', shuffle=False),
                                        batch_size=4, num_workers=0, collate_fn=dict(type='default_collate')),
                  train_cfg=dict(by_epoch=False, max_iters=max_iters),
                  optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
                  param_scheduler=[dict(type='MultiStepLR', by_epoch=False, milestones=[2], end=3),
                                   dict(type='OneCycleLR', eta_max=0.1, total_steps=3, by_epoch=False, begin=3)],
                  default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False)),
                  default_scope='mmengine')


class WritesFile:
    """Pickles as a call that creates ``path``: loading it must not create the file."""

    def __init__(self, path, how):
        self.path, self.how = path, how

    def __reduce__(self):
        if self.how == 'system':
            return os.system, (f'touch {self.path}', )
        if self.how == 'exec':
            return exec, (f'open({self.path!r}, "w").close()', )
        # getattr is allowed only for HistoryBuffer's statistics methods: reaching os.system through it fails
        return getattr(getattr(os, 'system'), '__call__'), (f'touch {self.path}', )


def test_mmengine_checkpoint_resumes_with_weights_only(tmp_path):
    runner(tmp_path, 4).train()
    ckpt = load_checkpoint_safely(str(tmp_path / 'iter_4.pth'))
    assert ckpt['message_hub']['log_scalars']['train/loss'].statistics('min') > 0  # numpy history restored
    resumed = runner(tmp_path, 6, resume=True)
    resumed.train()
    assert resumed.iter == 6 and resumed.message_hub.get_scalar('train/loss').data[0].size == 6


def test_checkpoint_loads_in_a_fresh_process(tmp_path):
    """tools/test.py and init_detector load a checkpoint before any HistoryBuffer exists (MMEngine fills its
    table of statistics methods only then): the message hub must still load."""
    runner(tmp_path, 4).train()
    code = ('import mmdet_asl\n'
            'from mmdet_asl.compat import load_checkpoint_safely\n'
            f'ckpt = load_checkpoint_safely({str(tmp_path / "iter_4.pth")!r})\n'
            "print(ckpt['message_hub']['log_scalars']['train/loss'].statistics('mean') > 0)\n")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith('True')


@pytest.mark.parametrize('how', ['system', 'exec', 'getattr'])
def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path, how):
    marker = tmp_path / 'side_effect'
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict=dict(w=torch.zeros(1)), meta=WritesFile(str(marker), how)), path)
    for load in (lambda: load_checkpoint_safely(str(path)), lambda: _load_checkpoint(str(path))):
        with pytest.raises(CheckpointLoadError, match='refused to load') as info:
            load()
        assert str(path) in str(info.value) and 'allow_checkpoint_globals' in str(info.value)
    assert not marker.exists()


def test_getattr_only_reaches_functions_mmengine_stores():
    from mmengine.logging.history_buffer import HistoryBuffer
    from mmengine.optim.scheduler.param_scheduler import OneCycleParamScheduler

    from mmdet_asl.compat import _checkpoint_getattr
    assert _checkpoint_getattr(HistoryBuffer, 'mean') is HistoryBuffer.mean
    assert _checkpoint_getattr(OneCycleParamScheduler, '_annealing_cos') is OneCycleParamScheduler._annealing_cos
    for obj, name in ((HistoryBuffer, '__init__'), (os, 'system'), (HistoryBuffer(), 'mean'),
                      (OneCycleParamScheduler, 'step')):
        with pytest.raises(pickle.UnpicklingError, match='not allowed'):
            _checkpoint_getattr(obj, name)


@pytest.mark.parametrize('content', [b'', b'hello world\n' * 10, 'truncated'])
def test_damaged_file_names_the_file(tmp_path, content):
    if content == 'truncated':
        torch.save(dict(state_dict=dict(w=torch.randn(100, 100))), tmp_path / 'full.pth')
        content = (tmp_path / 'full.pth').read_bytes()[:20000]
    path = tmp_path / 'epoch_1.pth'
    path.write_bytes(content)
    with pytest.raises(CheckpointLoadError, match='not a readable PyTorch checkpoint') as info:
        _load_checkpoint(str(path))
    assert str(path) in str(info.value)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    assert isinstance(get_file_backend(str(tmp_path / 'x.pth')), AtomicLocalBackend)
    path = tmp_path / 'iter_2.pth'
    from mmengine.runner.checkpoint import save_checkpoint
    save_checkpoint(dict(state_dict=dict(w=torch.ones(3))), str(path))
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~_umask()

    def killed(src, dst):  # the process dies after the data was written, before the rename
        raise KeyboardInterrupt

    monkeypatch.setattr(os, 'replace', killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(dict(state_dict=dict(w=torch.zeros(3))), str(path))
    monkeypatch.undo()
    assert torch.equal(load_checkpoint_safely(str(path))['state_dict']['w'], torch.ones(3))  # the old file
    assert sorted(p.name for p in tmp_path.iterdir()) == ['iter_2.pth']  # no temporary file left


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
