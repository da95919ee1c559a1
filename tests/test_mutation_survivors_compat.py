"""Behaviours of ``mmdet_asl.compat`` that mutants of it showed unchecked: the text of a refusal, pickles of
predictions (missing, unreadable, numpy objects under numpy 1 and 2 names, tensors pickled on a GPU), the remote
checkpoint schemes (download folder, progress bar, ranks, hand-zipped checkpoints, ``map_location``, deprecation
warnings, pavi and ceph arguments) and checkpoint writes (text files, hard links, mode and owner of the old file).
No network: downloads copy a local file."""
import io
import logging
import os
import pickle
import shutil
import sys
import warnings
import zipfile

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.runner.checkpoint import _load_checkpoint

import mmdet_asl  # noqa: F401  (installs the safe loaders and the atomic backend)
from mmdet_asl import compat
from mmdet_asl.compat import AtomicLocalBackend, SafeLoadError, load_pickle_safely


class RunsCommand:
    """Pickles as ``os.system(command)``."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command, )


# ---------------------------------------------------------------------------------------------------------------
# The refused global named in the error message


@pytest.mark.parametrize('message,expected', [
    ('global posix.system is not allowed', 'global posix.system is not allowed'),
    # torch's weights-only message: advice around the line that names the global; that line, without its dot
    ('Weights only load failed.\nPlease file an issue.\nUnsupported global: GLOBAL posix.system was not an allowed '
     'global by default.\nCheck the recommended steps.', 'Unsupported global: GLOBAL posix.system was not an '
     'allowed global by default'),
    # each keyword alone names the line
    ('advice\n  GLOBAL pkg.Thing refused.  ', 'GLOBAL pkg.Thing refused'),
    ('advice\nthe global pkg.Thing', 'the global pkg.Thing'),
    ('advice\nunrecognized function pkg.f.', 'unrecognized function pkg.f'),
    ('advice\npkg.f is not allowed...', 'pkg.f is not allowed'),
    # no line names a global: the first line; an X before the final dot stays
    ('Unexpected end of data.\nsecond line', 'Unexpected end of data'),
    ('GLOBAL pkg.MAX.', 'GLOBAL pkg.MAX'),
    ('.global pkg.f', '.global pkg.f'),  # only trailing dots go
    ('', ''),
])
def test_refused_part_is_the_line_naming_the_global(message, expected):
    assert compat._refused_part(pickle.UnpicklingError(message)) == expected


# ---------------------------------------------------------------------------------------------------------------
# load_pickle_safely


def test_missing_pickle_names_the_file(tmp_path):
    path = tmp_path / 'missing.pkl'
    with pytest.raises(FileNotFoundError) as info:
        load_pickle_safely(str(path))
    assert str(info.value) == f'{path} can not be found.'


def test_unreadable_pickle_names_the_file_and_the_error(tmp_path):
    path = tmp_path / 'empty.pkl'
    path.write_bytes(b'')
    with pytest.raises(SafeLoadError) as info:
        load_pickle_safely(str(path))
    assert str(info.value) == (f'{path}: not a readable pickle file (truncated or another format): '
                               'EOFError: Ran out of input')


def test_refused_pickle_message(tmp_path):
    path, marker = tmp_path / 'evil.pkl', tmp_path / 'ran'
    path.write_bytes(pickle.dumps([1, RunsCommand(f'touch {marker}')], protocol=2))
    with pytest.raises(SafeLoadError) as info:
        load_pickle_safely(str(path))
    assert str(info.value) == (
        f'{path}: refused to load: global posix.system is not allowed. Only containers, numbers, strings, numpy '
        'arrays and tensors (mmdet_asl.compat.PICKLE_SAFE_GLOBALS) are read from a pickle file, since unpickling '
        'anything else can run code.')
    assert not marker.exists()


class StorageBytes:
    """Pickles as ``torch.storage._load_from_bytes(payload)``, as plain pickle writes a tensor's storage."""

    def __init__(self, payload):
        self.payload = payload

    def __reduce__(self):
        return torch.storage._load_from_bytes, (self.payload, )


def test_code_inside_a_pickled_storage_is_refused_by_name(tmp_path):
    """The bytes of a pickled storage are a torch.save of their own: read with the same allow-list."""
    path, marker = tmp_path / 'evil.pkl', tmp_path / 'ran'
    inner = io.BytesIO()
    torch.save(RunsCommand(f'touch {marker}'), inner, _use_new_zipfile_serialization=False)
    path.write_bytes(pickle.dumps(StorageBytes(inner.getvalue()), protocol=2))
    with pytest.raises(SafeLoadError, match=f'^{path}: refused to load: global posix.system is not allowed'):
        load_pickle_safely(str(path))
    assert not marker.exists()


def test_tensor_pickled_on_a_gpu_is_read_on_the_cpu(tmp_path, monkeypatch):
    """Predictions of a GPU run (``tools/test.py --out``) hold tensors pickled with their CUDA location."""
    monkeypatch.setattr(torch.serialization, 'location_tag', lambda storage: 'cuda:0')
    data = pickle.dumps([dict(pred_score=torch.tensor([0.25, 0.75]))], protocol=2)  # as a GPU process writes it
    monkeypatch.undo()
    path = tmp_path / 'preds.pkl'
    path.write_bytes(data)
    preds = load_pickle_safely(str(path))
    assert preds[0]['pred_score'].device.type == 'cpu'
    assert preds[0]['pred_score'].tolist() == [0.25, 0.75]


@pytest.mark.parametrize('protocol', [2, 5])
@pytest.mark.parametrize('numpy1', [False, True])
def test_numpy_objects_under_numpy_1_and_2_names(protocol, numpy1, monkeypatch):
    """The numpy part of the allow-lists: arrays (by _reconstruct, or by _frombuffer from protocol 5 on),
    scalars, dtypes and the dtype classes, named as numpy 1 or numpy 2 pickles them."""
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no numpy.core deprecation warning on numpy 2
        allowed = compat._global_names(compat._numpy_globals())
    allowed.update(compat._torch_allowed_globals())  # containers, _codecs.encode for protocol 2 bytes
    unpickle = compat._restricted_pickle(allowed).load
    values = [np.arange(3, dtype=np.int64), np.arange(4.0).reshape(2, 2)[:, 0], np.float32(1.5), np.dtype('<u2'),
              type(np.dtype(np.int32)), type(np.dtype(np.float16)), type(np.dtype(np.bool_))]
    if numpy1:  # pickled as numpy 1.x names these functions: numpy.core.* instead of numpy 2's numpy._core.*
        for func, module in ((np._core.multiarray._reconstruct, 'numpy.core.multiarray'),
                             (np._core.multiarray.scalar, 'numpy.core.multiarray'),
                             (np._core.numeric._frombuffer, 'numpy.core.numeric')):
            monkeypatch.setattr(func, '__module__', module)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # numpy 2 warns when pickle looks the functions up in numpy.core
        data = pickle.dumps(values, protocol=protocol)
    monkeypatch.undo()
    assert (b'numpy.core.' in data) == numpy1 and (b'numpy._core.' in data) != numpy1
    out = unpickle(io.BytesIO(data))
    assert out[0].tolist() == [0, 1, 2] and out[0].dtype == np.int64
    assert out[1].tolist() == [0.0, 2.0]
    assert out[2] == np.float32(1.5) and out[2].dtype == np.float32
    assert out[3] == np.dtype('<u2')
    assert out[4:] == [type(np.dtype('int32')), type(np.dtype('float16')), type(np.dtype('bool'))]
    # anything else of numpy is still refused
    with pytest.raises(pickle.UnpicklingError, match='global numpy.load is not allowed'):
        unpickle(io.BytesIO(pickle.dumps(np.load, protocol=2)))


# ---------------------------------------------------------------------------------------------------------------
# Remote checkpoint schemes (torch.hub's download copies a local file)


@pytest.fixture
def served(tmp_path, monkeypatch):
    """``served['file']``: what every URL downloads; ``served['calls']``: (url, folder, progress) of each download."""
    state = dict(file=None, calls=[])
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.setenv('MMENGINE_HOME', str(tmp_path / 'mmengine_home'))
    monkeypatch.chdir(tmp_path)  # a file written to the working folder by mistake stays out of the checkout

    def download(url, dst, hash_prefix=None, progress=True):
        state['calls'].append((url, os.path.dirname(dst), progress))
        shutil.copy(state['file'], dst)

    monkeypatch.setattr(torch.hub, 'download_url_to_file', download)
    return state


def _save(path, value=1.0, key='w'):
    torch.save(dict(state_dict={key: torch.full((2, ), value)}), path)
    return path


def hub_cache(tmp_path):
    return str(tmp_path / 'torch_home' / 'hub' / 'checkpoints')


@pytest.mark.parametrize('progress', [True, False])
def test_http_download_folder_and_progress_bar(tmp_path, served, progress):
    served['file'] = _save(tmp_path / 'good.pth', 3.0)
    mine = tmp_path / 'mine'
    ckpt = compat.load_from_http('https://example.com/w/good.pth', model_dir=str(mine), progress=progress)
    assert ckpt['state_dict']['w'].tolist() == [3.0, 3.0]
    assert served['calls'] == [('https://example.com/w/good.pth', str(mine), progress)]
    assert (mine / 'good.pth').is_file() and not os.path.exists(hub_cache(tmp_path))


def test_hand_zipped_checkpoint_is_extracted_into_the_download_folder(tmp_path, served):
    """A zip holding one file (a torch < 1.6 checkpoint zipped by hand), as torch.hub extracts it."""
    good = _save(tmp_path / 'good.pth', 2.0)
    served['file'] = tmp_path / 'weights.zip'
    with zipfile.ZipFile(served['file'], 'w') as z:
        z.write(good, 'inner.pth')
    ckpt = _load_checkpoint('https://example.com/weights.zip')
    assert ckpt['state_dict']['w'].tolist() == [2.0, 2.0]
    assert sorted(os.listdir(hub_cache(tmp_path))) == ['inner.pth', 'weights.zip']
    mine = tmp_path / 'mine'
    ckpt = compat.load_from_http('https://example.com/weights.zip', model_dir=str(mine))
    assert ckpt['state_dict']['w'].tolist() == [2.0, 2.0] and sorted(os.listdir(mine)) == ['inner.pth', 'weights.zip']


def test_zip_holding_only_a_folder_is_not_extracted(tmp_path, served):
    served['file'] = tmp_path / 'folder.zip'
    with zipfile.ZipFile(served['file'], 'w') as z:
        z.writestr('weights/', b'')
    with pytest.raises(compat.CheckpointLoadError, match='folder.zip: not a readable PyTorch checkpoint'):
        _load_checkpoint('https://example.com/folder.zip')
    assert os.listdir(hub_cache(tmp_path)) == ['folder.zip']


class Dist:
    """``get_dist_info`` and ``torch.distributed.barrier`` of one rank; ``events`` records downloads and barriers."""

    def __init__(self, monkeypatch, served, rank, world_size, on_barrier=None):
        self.events = []
        monkeypatch.setattr(compat, 'get_dist_info', lambda: (rank, world_size))
        download = torch.hub.download_url_to_file

        def record_download(url, dst, hash_prefix=None, progress=True):
            self.events.append('download')
            download(url, dst, hash_prefix, progress)

        def barrier():
            self.events.append('barrier')
            if on_barrier:
                on_barrier()

        monkeypatch.setattr(torch.hub, 'download_url_to_file', record_download)
        monkeypatch.setattr(torch.distributed, 'barrier', barrier)


def test_rank_0_downloads_before_the_barrier(tmp_path, served, monkeypatch):
    served['file'] = _save(tmp_path / 'good.pth', 4.0)
    dist = Dist(monkeypatch, served, rank=0, world_size=2)
    assert compat.load_from_http('https://example.com/good.pth')['state_dict']['w'].tolist() == [4.0, 4.0]
    assert dist.events == ['download', 'barrier']


def test_other_ranks_read_rank_0s_copy_after_the_barrier(tmp_path, served, monkeypatch):
    served['file'] = _save(tmp_path / 'good.pth', 5.0)

    def rank_0_downloads():
        os.makedirs(hub_cache(tmp_path), exist_ok=True)
        shutil.copy(served['file'], os.path.join(hub_cache(tmp_path), 'good.pth'))

    dist = Dist(monkeypatch, served, rank=1, world_size=2, on_barrier=rank_0_downloads)
    assert compat.load_from_http('https://example.com/good.pth')['state_dict']['w'].tolist() == [5.0, 5.0]
    assert dist.events == ['barrier']


@pytest.mark.parametrize('progress', [True, False])
def test_rank_on_another_node_downloads_its_own_copy_after_the_barrier(tmp_path, served, monkeypatch, progress):
    served['file'] = _save(tmp_path / 'good.pth', 6.0)
    dist = Dist(monkeypatch, served, rank=1, world_size=2)
    mine = tmp_path / 'node_1'
    ckpt = compat.load_from_http('https://example.com/good.pth', model_dir=str(mine), progress=progress)
    assert ckpt['state_dict']['w'].tolist() == [6.0, 6.0]
    assert dist.events == ['barrier', 'download']
    assert served['calls'] == [('https://example.com/good.pth', str(mine), progress)]


def _hub_name(name):
    import json

    import mmengine
    with open(os.path.join(mmengine.__path__[0], 'hub', name)) as f:
        return next(iter(json.load(f)))


def test_map_location_reaches_every_scheme(tmp_path, served, monkeypatch):
    """A ``map_location`` function is called with each storage's location, whatever the scheme."""
    served['file'] = _save(tmp_path / 'good.pth', 7.0, key='backbone.w')
    home = tmp_path / 'mmengine_home'
    home.mkdir()
    _save(home / 'local.pth', 7.0, key='backbone.w')
    (home / 'open_mmlab.json').write_text('{"local_entry": "local.pth"}')

    class Model:
        name = 'good.pth'

        def download(self, dst):
            shutil.copy(served['file'], dst)

    pavi = type(sys)('pavi')
    pavi.modelcloud = type(sys)('pavi.modelcloud')
    pavi.modelcloud.get = lambda path: Model()
    monkeypatch.setitem(sys.modules, 'pavi', pavi)

    class Petrel:
        def get(self, path):
            return served['file'].read_bytes()

    monkeypatch.setattr(compat, 'get_file_backend', lambda path, backend_args: Petrel())
    for url in ('https://example.com/good.pth', 'torchvision://resnet18', 'modelzoo://resnet18',
                'open-mmlab://local_entry', f'open-mmlab://{_hub_name("openmmlab.json")}',
                f'mmcls://{_hub_name("mmcls.json")}', 'pavi://models/good', 's3://bucket/good.pth'):
        seen = []

        def map_location(storage, location):
            seen.append(location)
            return storage

        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # modelzoo:// is deprecated
            ckpt = _load_checkpoint(url, map_location=map_location)
        assert seen == ['cpu'], url
        key = 'w' if url.startswith('mmcls://') else 'backbone.w'  # mmcls:// keeps the backbone's weights
        assert list(ckpt['state_dict']) == [key] and ckpt['state_dict'][key].tolist() == [7.0, 7.0], url


@pytest.fixture
def logged():
    """Records (level, message) of what MMEngine's current logger logs."""
    records = []

    class Handler(logging.Handler):
        def emit(self, record):
            records.append((record.levelno, record.getMessage()))

    logger = MMLogger.get_current_instance()
    handler = Handler(level=logging.DEBUG)
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def test_modelzoo_scheme_warns_through_the_current_logger(tmp_path, served, logged):
    served['file'] = _save(tmp_path / 'good.pth')
    _load_checkpoint('modelzoo://resnet18')
    assert (logging.WARNING, 'The URL scheme of "modelzoo://" is deprecated, please use "torchvision://" instead') \
        in logged
    assert served['calls'][0][0].startswith('https://download.pytorch.org/models/resnet18')


@pytest.mark.parametrize('prefix', ['open-mmlab://', 'openmmlab://'])
def test_deprecated_openmmlab_name_warns_and_loads_its_successor(tmp_path, served, logged, prefix):
    import json

    import mmengine
    with open(os.path.join(mmengine.__path__[0], 'hub', 'deprecated.json')) as f:
        old, new = next(iter(json.load(f).items()))
    home = tmp_path / 'mmengine_home'
    home.mkdir()
    _save(home / 'successor.pth', 8.0)
    (home / 'open_mmlab.json').write_text(json.dumps({new: 'successor.pth'}))
    assert _load_checkpoint(f'{prefix}{old}')['state_dict']['w'].tolist() == [8.0, 8.0]
    assert (logging.WARNING, f'{prefix}{old} is deprecated in favor of {prefix}{new}') in logged


def test_openmmlab_entry_with_an_http_url_is_downloaded(tmp_path, served):
    served['file'] = _save(tmp_path / 'good.pth', 9.0)
    home = tmp_path / 'mmengine_home'
    home.mkdir()
    (home / 'open_mmlab.json').write_text('{"plain_http": "http://example.com/plain.pth"}')
    assert _load_checkpoint('openmmlab://plain_http')['state_dict']['w'].tolist() == [9.0, 9.0]
    assert [call[0] for call in served['calls']] == ['http://example.com/plain.pth']


def test_pavi_model_is_asked_by_its_path_and_downloaded_to_a_temporary_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    good = _save(tmp_path / 'good.pth', 10.0)
    asked, targets = [], []

    class Model:
        name = 'remote.pth'

        def download(self, dst):
            targets.append(dst)
            shutil.copy(good, dst)

    def get(path):
        asked.append(path)
        return Model()

    pavi = type(sys)('pavi')
    pavi.modelcloud = type(sys)('pavi.modelcloud')
    pavi.modelcloud.get = get
    monkeypatch.setitem(sys.modules, 'pavi', pavi)
    assert _load_checkpoint('pavi://project/models/remote')['state_dict']['w'].tolist() == [10.0, 10.0]
    assert asked == ['project/models/remote']
    assert os.path.basename(targets[0]) == 'remote.pth' and os.path.dirname(targets[0]) != str(tmp_path)
    assert not os.path.exists(targets[0]) and not os.path.exists(os.path.dirname(targets[0]))  # removed
    assert sorted(os.listdir(tmp_path)) == ['good.pth']


def test_pavi_errors(monkeypatch):
    with pytest.raises(ValueError) as info:
        compat.load_from_pavi('s3://bucket/x.pth')
    assert str(info.value) == 'Expected filename startswith `pavi://`, but get s3://bucket/x.pth'
    monkeypatch.setitem(sys.modules, 'pavi', None)  # not installed
    with pytest.raises(ImportError) as info:
        compat.load_from_pavi('pavi://models/x')
    assert str(info.value) == 'Please install pavi to load checkpoint from modelcloud.'


def test_ceph_reads_through_the_petrel_backend(tmp_path, monkeypatch):
    good = _save(tmp_path / 'good.pth', 11.0)
    asked = []

    class Petrel:
        def get(self, path):
            asked.append(('get', path))
            return good.read_bytes()

    def get_file_backend(path, backend_args):
        asked.append((path, backend_args))
        return Petrel()

    monkeypatch.setattr(compat, 'get_file_backend', get_file_backend)
    assert _load_checkpoint('cluster:s3://bucket/good.pth')['state_dict']['w'].tolist() == [11.0, 11.0]
    assert asked == [('cluster:s3://bucket/good.pth', {'backend': 'petrel'}), ('get', 'cluster:s3://bucket/good.pth')]


# ---------------------------------------------------------------------------------------------------------------
# Checkpoint writes


def _killed_before_rename(monkeypatch):
    def killed(src, dst):  # the process dies after the data was written, before the rename
        raise KeyboardInterrupt

    monkeypatch.setattr(os, 'replace', killed)


@pytest.mark.parametrize('encoding,expected', [(None, 'é 1'.encode('utf-8')), ('latin-1', b'\xe9 1'),
                                               ('utf-16', 'é 1'.encode('utf-16'))])
def test_put_text_writes_the_encoded_text(tmp_path, monkeypatch, encoding, expected):
    monkeypatch.chdir(tmp_path)
    backend = AtomicLocalBackend()
    kwargs = {} if encoding is None else dict(encoding=encoding)
    for name in ('last_checkpoint', 'scalars.json'):
        backend.put_text('é 1', str(tmp_path / name), **kwargs)
        assert (tmp_path / name).read_bytes() == expected, name
    assert sorted(os.listdir(tmp_path)) == ['last_checkpoint', 'scalars.json']


def test_put_text_of_last_checkpoint_is_atomic(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / 'last_checkpoint'
    path.write_text('epoch_1.pth')
    _killed_before_rename(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        AtomicLocalBackend().put_text('epoch_2.pth', str(path))
    monkeypatch.undo()
    assert path.read_text() == 'epoch_1.pth' and os.listdir(tmp_path) == ['last_checkpoint']
    # any other text file is written in place, as MMEngine writes it
    other = tmp_path / 'scalars.json'
    _killed_before_rename(monkeypatch)
    AtomicLocalBackend().put_text('{}', str(other))
    assert other.read_text() == '{}'


def test_hard_linked_checkpoint_is_written_in_place(tmp_path):
    """A rename would detach the other name: both names see the new data."""
    path, link = tmp_path / 'epoch_1.pth', tmp_path / 'best.pth'
    path.write_bytes(b'old')
    os.link(path, link)
    inode = os.stat(path).st_ino
    AtomicLocalBackend().put(b'new data', str(path))
    assert path.read_bytes() == b'new data' and link.read_bytes() == b'new data'
    assert os.stat(path).st_ino == inode and sorted(os.listdir(tmp_path)) == ['best.pth', 'epoch_1.pth']


def test_replaced_checkpoint_keeps_its_mode(tmp_path):
    path = tmp_path / 'epoch_1.pth'
    path.write_bytes(b'old')
    os.chmod(path, 0o604)
    inode = os.stat(path).st_ino
    AtomicLocalBackend().put(b'new', str(path))
    assert path.read_bytes() == b'new' and os.stat(path).st_mode & 0o777 == 0o604
    assert os.stat(path).st_ino != inode  # replaced, not written in place


class Owners:
    """``os.fstat`` reports the temporary file as owned by ``(uid + du, gid + dg)``; ``os.fchown`` is recorded (the
    name of the file it changes, uid, gid) and raises ``PermissionError`` when ``refuse`` (a user may not give a
    file away)."""

    def __init__(self, monkeypatch, du=0, dg=0, refuse=False):
        self.chown = []
        fstat = os.fstat

        def fake_fstat(fd):
            st = fstat(fd)
            return os.stat_result(st[:4] + (st.st_uid + du, st.st_gid + dg) + st[6:10])

        def fchown(fd, uid, gid):
            self.chown.append((os.path.basename(os.readlink(f'/proc/self/fd/{fd}')), uid, gid))
            if refuse:
                raise PermissionError(1, 'Operation not permitted')

        monkeypatch.setattr(os, 'fstat', fake_fstat)
        monkeypatch.setattr(os, 'fchown', fchown)


@pytest.mark.parametrize('du,dg', [(1, 0), (0, 1)])
def test_replaced_checkpoint_gets_the_old_owner(tmp_path, monkeypatch, du, dg):
    path = tmp_path / 'epoch_1.pth'
    path.write_bytes(b'old')
    old = os.stat(path)
    owners = Owners(monkeypatch, du, dg)
    AtomicLocalBackend().put(b'new', str(path))
    assert len(owners.chown) == 1 and owners.chown[0][1:] == (old.st_uid, old.st_gid)
    assert owners.chown[0][0].startswith('.epoch_1.pth.') and owners.chown[0][0].endswith('.tmp')  # the new file
    assert path.read_bytes() == b'new' and os.stat(path).st_ino != old.st_ino


def test_same_owner_is_not_set_again(tmp_path, monkeypatch):
    """Where chown is refused (some mounts refuse every chown), a file already ours is still replaced."""
    path = tmp_path / 'epoch_1.pth'
    path.write_bytes(b'old')
    inode = os.stat(path).st_ino
    owners = Owners(monkeypatch, refuse=True)
    AtomicLocalBackend().put(b'new', str(path))
    assert owners.chown == [] and path.read_bytes() == b'new' and os.stat(path).st_ino != inode


def test_checkpoint_whose_owner_cannot_be_kept_is_written_in_place(tmp_path, monkeypatch):
    path = tmp_path / 'epoch_1.pth'
    path.write_bytes(b'old')
    old = os.stat(path)
    owners = Owners(monkeypatch, du=1, refuse=True)
    AtomicLocalBackend().put(b'new data', str(path))
    assert [c[1:] for c in owners.chown] == [(old.st_uid, old.st_gid)]
    assert path.read_bytes() == b'new data' and os.stat(path).st_ino == old.st_ino  # the same file, its owner kept
    assert os.listdir(tmp_path) == ['epoch_1.pth']  # the temporary file is removed
    fd = os.open(path, os.O_RDONLY)
    try:
        assert compat._take_over(fd, old) is False
    finally:
        os.close(fd)
