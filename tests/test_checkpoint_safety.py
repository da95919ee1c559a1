"""Checkpoint loading refuses pickled code and damaged files with errors naming the file, through every
MMEngine checkpoint scheme; MMEngine's own checkpoints (message hub, numpy history buffers) still resume, also
from two threads at once; the user's torch safe globals are kept; checkpoint files are written atomically."""
import json
import os
import pickle
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint
from torch.utils.data import Dataset

import mmdet_asl  # noqa: F401  (installs the safe loader and the atomic backend)
from mmdet_asl import compat
from mmdet_asl.compat import (
    CHECKPOINT_SAFE_GLOBALS,
    AtomicLocalBackend,
    CheckpointLoadError,
    allow_checkpoint_globals,
    load_checkpoint_safely,
)


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
def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path, monkeypatch, how):
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')  # the loader does not depend on torch's default
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
    with open('/proc/self/status') as f:  # read without setting it (os.umask would, for every thread)
        return int(next(line for line in f if line.startswith('Umask:')).split()[1], 8)


# ---------------------------------------------------------------------------------------------------------------
# Hand-written pickles


class Raw:
    """Its bytes go into the pickle stream as they are (see RawPickler): a pickle no Python object pickles to."""

    def __init__(self, data):
        self.data = data


class RawPickler(pickle._Pickler):

    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, Raw):
            self.write(obj.data)
        else:
            super().save(obj, save_persistent_id)


def save_with_raw(obj, path):
    """torch.save of ``obj`` (a genuine zip checkpoint) whose Raw parts are written as hand-made opcodes."""
    module = type(sys)('raw_pickle')
    module.Pickler = RawPickler
    torch.save(obj, path, pickle_module=module)


def _op_str(text):
    data = text.encode()
    return b'X' + len(data).to_bytes(4, 'little') + data  # BINUNICODE


def _op_call(func, *args):
    return func + b'(' + b''.join(args) + b't' + b'R'  # MARK args TUPLE REDUCE: func(*args)


GETATTR = b'cbuiltins\ngetattr\n'
HISTORY_BUFFER = b'cmmengine.logging.history_buffer\nHistoryBuffer\n'


def getattr_to_system(command):
    """Opcodes of ``os.system(command)`` reached from the allowed HistoryBuffer class through builtins.getattr
    alone: HistoryBuffer.__init__.__globals__['__builtins__']['__import__']('os').system(command)."""
    init_globals = _op_call(GETATTR, _op_call(GETATTR, HISTORY_BUFFER, _op_str('__init__')), _op_str('__globals__'))
    builtins_dict = _op_call(_op_call(GETATTR, init_globals, _op_str('get')), _op_str('__builtins__'))
    import_ = _op_call(_op_call(GETATTR, builtins_dict, _op_str('get')), _op_str('__import__'))
    system = _op_call(GETATTR, _op_call(import_, _op_str('os')), _op_str('system'))
    return _op_call(system, _op_str(command))


def test_getattr_chain_runs_with_the_builtin_getattr(tmp_path):
    """The hand-made chain is a real attack: plain pickle (builtin getattr) runs it."""
    marker = tmp_path / 'ran'
    pickle.loads(b'\x80\x02' + getattr_to_system(f'touch {marker}') + b'.')
    assert marker.exists()


def test_builtin_getattr_is_not_allowed_the_restricted_one_refuses_the_chain(tmp_path):
    marker, path = tmp_path / 'ran', tmp_path / 'evil.pth'
    save_with_raw(dict(state_dict=dict(w=torch.zeros(1)), meta=Raw(getattr_to_system(f'touch {marker}'))), path)
    for load in (lambda: load_checkpoint_safely(str(path)), lambda: _load_checkpoint(str(path))):
        with pytest.raises(CheckpointLoadError, match="refused to load: getattr.*HistoryBuffer.*'__init__'") as info:
            load()
        assert str(path) in str(info.value)
    assert not marker.exists()
    assert getattr not in CHECKPOINT_SAFE_GLOBALS and (getattr, 'builtins.getattr') not in CHECKPOINT_SAFE_GLOBALS
    assert compat._checkpoint_globals()['builtins.getattr'] is compat._checkpoint_getattr


class TrustedState:
    """A user's class stored in a checkpoint (module-level, so pickle can name it)."""

    def __init__(self, value):
        self.value = value


def test_allow_checkpoint_globals_lets_a_refused_class_load(tmp_path, monkeypatch):
    monkeypatch.setattr(compat, '_extra_globals', [])
    path = tmp_path / 'custom.pth'
    torch.save(dict(state_dict=dict(w=torch.ones(2)), extra=TrustedState(7)), path)
    with pytest.raises(CheckpointLoadError, match=f'refused to load: .*{__name__}.TrustedState') as info:
        _load_checkpoint(str(path))
    assert str(path) in str(info.value)
    allow_checkpoint_globals(TrustedState)
    ckpt = _load_checkpoint(str(path))
    assert isinstance(ckpt['extra'], TrustedState) and ckpt['extra'].value == 7
    assert torch.equal(ckpt['state_dict']['w'], torch.ones(2))


def test_protocol_4_checkpoints_load_or_are_refused_for_their_content(tmp_path):
    good, evil, marker = tmp_path / 'good.pth', tmp_path / 'evil.pth', tmp_path / 'ran'
    torch.save(dict(state_dict=dict(w=torch.arange(3.)), hub=HistoryBuffer([1.0, 2.0], [1, 1])), good,
               pickle_protocol=4)
    ckpt = _load_checkpoint(str(good))
    assert torch.equal(ckpt['state_dict']['w'], torch.arange(3.)) and ckpt['hub'].mean() == 1.5
    torch.save(dict(meta=WritesFile(str(marker), 'system')), evil, pickle_protocol=4)
    with pytest.raises(CheckpointLoadError, match='refused to load: global posix.system is not allowed') as info:
        _load_checkpoint(str(evil))
    assert 'truncated' not in str(info.value) and str(evil) in str(info.value)
    assert not marker.exists()


def test_a_plain_pickle_is_named_as_such(tmp_path):
    path = tmp_path / 'preds.pth'
    path.write_bytes(pickle.dumps([dict(img_id=1, scores=[0.5])], protocol=4))
    with pytest.raises(CheckpointLoadError, match='plain pickle, not a PyTorch checkpoint') as info:
        _load_checkpoint(str(path))
    assert 'truncated' not in str(info.value) and str(path) in str(info.value)


def test_forced_weights_only_load_names_the_protocol(tmp_path, monkeypatch):
    """With TORCH_FORCE_WEIGHTS_ONLY_LOAD torch's own unpickler loads, which cannot read protocol 4."""
    monkeypatch.setenv('TORCH_FORCE_WEIGHTS_ONLY_LOAD', '1')
    plain, p4 = tmp_path / 'plain.pth', tmp_path / 'p4.pth'
    torch.save(dict(state_dict=dict(w=torch.ones(2))), plain)
    assert torch.equal(_load_checkpoint(str(plain))['state_dict']['w'], torch.ones(2))
    torch.save(dict(state_dict=dict(w=torch.ones(2))), p4, pickle_protocol=4)
    with pytest.raises(CheckpointLoadError, match='protocol 4 or higher') as info:
        _load_checkpoint(str(p4))
    assert 'truncated' not in str(info.value) and str(p4) in str(info.value)


# ---------------------------------------------------------------------------------------------------------------
# Global state: the user's safe globals, concurrent loads


@pytest.fixture
def user_safe_globals():
    before = torch.serialization.get_safe_globals()
    yield
    torch.serialization.clear_safe_globals()
    torch.serialization.add_safe_globals(before)


def test_user_safe_globals_are_kept_and_honoured(tmp_path, user_safe_globals):
    torch.serialization.add_safe_globals([np.ndarray, TrustedState])  # np.ndarray: also in the plugin's list
    expected = set(torch.serialization.get_safe_globals())
    path, own = tmp_path / 'ckpt.pth', tmp_path / 'own.pth'
    torch.save(dict(hub=HistoryBuffer([1.0, 3.0], [1, 1]), extra=TrustedState(1)), path)
    ckpt = _load_checkpoint(str(path))  # TrustedState: registered by the user with torch
    assert ckpt['hub'].mean() == 2.0 and ckpt['extra'].value == 1
    assert set(torch.serialization.get_safe_globals()) == expected
    torch.save(dict(extra=TrustedState(2)), own)
    assert torch.load(own, weights_only=True)['extra'].value == 2  # the user's own torch.load still works


def test_two_threads_load_valid_checkpoints_at_once(tmp_path):
    path = tmp_path / 'ckpt.pth'
    torch.save(dict(state_dict=dict(w=torch.ones(2)), message_hub=dict(log_scalars=dict(
        loss=HistoryBuffer(np.arange(5.0), np.ones(5))))), path)
    errors, start = [], threading.Barrier(2)

    def load_many():
        start.wait()
        for _ in range(200):
            try:
                assert load_checkpoint_safely(str(path))['message_hub']['log_scalars']['loss'].mean() == 2.0
            except Exception as exc:  # collected: the main thread reports them
                errors.append(repr(exc)[:200])

    threads = [threading.Thread(target=load_many) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, f'{len(errors)} of 400 loads failed, e.g. {errors[0]}'
    assert torch.serialization.get_safe_globals() == [] or HistoryBuffer not in torch.serialization.get_safe_globals()


# ---------------------------------------------------------------------------------------------------------------
# MMEngine's checkpoint schemes (no network: torch.hub's download copies a local file)


def test_every_mmengine_scheme_has_a_safe_loader():
    assert set(CheckpointLoader._schemes) == set(compat.SAFE_SCHEMES)
    for prefix, loader in CheckpointLoader._schemes.items():
        assert loader is compat.SAFE_SCHEMES[prefix], prefix


def _hub_names(name):
    import mmengine
    with open(os.path.join(mmengine.__path__[0], 'hub', name)) as f:
        return next(iter(json.load(f)))


@pytest.fixture
def served(tmp_path, monkeypatch):
    """``served[0] = file``: every URL downloads a copy of that file; ``served[1]``: the URLs asked for."""
    state = [None, []]
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.setenv('MMENGINE_HOME', str(tmp_path / 'mmengine_home'))

    def download(url, dst, hash_prefix=None, progress=True):
        state[1].append(url)
        shutil.copy(state[0], dst)

    monkeypatch.setattr(torch.hub, 'download_url_to_file', download)
    return state


URL_SCHEMES = ['https://example.com/weights/evil.pth', 'http://example.com/evil.pth', 'torchvision://resnet18',
               'modelzoo://resnet18', f'open-mmlab://{_hub_names("openmmlab.json")}',
               f'openmmlab://{_hub_names("openmmlab.json")}', f'mmcls://{_hub_names("mmcls.json")}']


@pytest.mark.parametrize('url', URL_SCHEMES)
def test_downloaded_checkpoints_are_loaded_safely(tmp_path, monkeypatch, served, url):
    # torch.hub's loader, which MMEngine's uses, passes weights_only=False: this would make any loader unsafe
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    marker = tmp_path / 'ran'
    served[0] = tmp_path / 'evil.pth'
    torch.save(dict(state_dict=dict(w=torch.zeros(1)), meta=WritesFile(str(marker), 'system')), served[0])
    with pytest.raises(CheckpointLoadError, match='refused to load: global posix.system'):
        _load_checkpoint(url)
    assert served[1] and served[1][0].startswith('http') and not marker.exists()


def test_downloaded_checkpoint_loads(tmp_path, served):
    served[0] = tmp_path / 'good.pth'
    torch.save(dict(state_dict={'backbone.w': torch.ones(2)}), served[0])
    assert torch.equal(_load_checkpoint('https://example.com/good.pth')['state_dict']['backbone.w'], torch.ones(2))
    assert torch.equal(_load_checkpoint(f'mmcls://{_hub_names("mmcls.json")}')['state_dict']['w'], torch.ones(2))
    cached = tmp_path / 'torch_home' / 'hub' / 'checkpoints' / 'good.pth'
    assert cached.is_file() and served[1] == ['https://example.com/good.pth', served[1][1]]
    _load_checkpoint('https://example.com/good.pth')  # from the cache: no second download
    assert len(served[1]) == 2


def test_open_mmlab_local_entry_pavi_and_ceph_are_loaded_safely(tmp_path, monkeypatch):
    marker, evil = tmp_path / 'ran', tmp_path / 'evil.pth'
    torch.save(dict(meta=WritesFile(str(marker), 'system')), evil)
    home = tmp_path / 'mmengine_home'
    home.mkdir()
    shutil.copy(evil, home / 'local_evil.pth')
    (home / 'open_mmlab.json').write_text(json.dumps({'local_evil': 'local_evil.pth'}))
    monkeypatch.setenv('MMENGINE_HOME', str(home))

    class Model:  # pavi.modelcloud's model: downloads to a path
        name = 'evil.pth'

        def download(self, dst):
            shutil.copy(evil, dst)

    pavi = type(sys)('pavi')
    pavi.modelcloud = type(sys)('pavi.modelcloud')
    pavi.modelcloud.get = lambda path: Model()
    monkeypatch.setitem(sys.modules, 'pavi', pavi)

    class Petrel:
        def get(self, path):
            return evil.read_bytes()

    monkeypatch.setattr(compat, 'get_file_backend', lambda path, backend_args: Petrel())
    for url in ('open-mmlab://local_evil', 'pavi://models/evil', 's3://bucket/evil.pth',
                'cluster:s3://bucket/evil.pth', 'petrel://bucket/evil.pth'):
        with pytest.raises(CheckpointLoadError, match='refused to load: global posix.system') as info:
            _load_checkpoint(url)
        assert (str(home) if url.startswith('open') else url) in str(info.value)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------------------------
# Tools reading pickles and checkpoints

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_no_unrestricted_unpickling_in_the_package_and_tools():
    import re
    unsafe = re.compile(r'pickle\.loads?\(|weights_only=False|mmengine\.load\(|torch\.load\((?![^)]*weights_only=True)')
    found = []
    for folder in ('mmdet_asl', 'tools'):
        for root, _, files in os.walk(os.path.join(ROOT, folder)):
            for name in files:
                if name.endswith('.py'):
                    path = os.path.join(root, name)
                    with open(path, encoding='utf-8') as f:
                        found += [f'{os.path.relpath(path, ROOT)}:{i}: {line.strip()}'
                                  for i, line in enumerate(f, 1) if unsafe.search(line.split('#')[0])
                                  and '``' not in line and 'pickle_module=_restricted_pickle' not in line]
    assert not found, '\n'.join(found)


def test_experiment_longtail_reads_its_files_safely(tmp_path):
    from test_detection_e2e import load_tool
    tool = load_tool('analysis_tools/experiment_longtail')
    marker = tmp_path / 'ran'
    dump = tmp_path / 'predictions.pkl'
    good = [dict(pred_score=torch.tensor([0.9, 0.2]), gt_score=torch.tensor([1., 0.])),
            dict(pred_score=torch.tensor([0.1, 0.8]), gt_score=torch.tensor([0., 1.]))]
    import mmengine
    mmengine.dump(good, str(dump))
    assert tool.per_class_ap(str(dump)).tolist() == [100.0, 100.0]
    dump.write_bytes(pickle.dumps(good + [WritesFile(str(marker), 'system')], protocol=2))
    with pytest.raises(compat.SafeLoadError, match=f'{dump}: refused to load: global posix.system'):
        tool.per_class_ap(str(dump))
    torch.save(dict(state_dict={}, meta=WritesFile(str(marker), 'system')), tmp_path / 'epoch_2.pth')
    with pytest.raises(CheckpointLoadError, match='refused to load: global posix.system'):
        tool.final_gamma(str(tmp_path), 2)
    assert not marker.exists()
    torch.save(dict(state_dict={}, probability_gap={'head': dict(gamma_neg=torch.tensor([3.0, 5.0]))}),
               tmp_path / 'epoch_3.pth')
    assert tool.final_gamma(str(tmp_path), 3) == [3.0, 5.0]
