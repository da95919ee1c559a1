"""Safe loading of checkpoints and pickle files, and atomic checkpoint writes; registered when ``mmdet_asl`` is
imported. Importing changes nothing but MMEngine's registries (checkpoint schemes, the local file backend).

Loading. MMEngine 0.10.x loads checkpoints with a plain ``torch.load``: unpickling a file can run any code the
file names. Every checkpoint scheme MMEngine registers (:data:`SAFE_SCHEMES`: local paths, ``http(s)://``,
``torchvision://`` / ``modelzoo://``, ``open-mmlab://`` / ``openmmlab://``, ``mmcls://``, ``pavi://``,
``s3://`` / ``petrel://``) is re-registered with a loader that fetches the file the way MMEngine does and
unpickles it with a restricted unpickler (``torch.load``'s ``pickle_module``): the only globals it can name are
torch's own weights-only allow-list (tensors, storages, dtypes, ``torch.Size`` ...), the globals the user
registered with ``torch.serialization.add_safe_globals``, and :data:`CHECKPOINT_SAFE_GLOBALS`, the non-tensor
classes MMEngine writes into its own checkpoints (the message hub's ``HistoryBuffer`` and the numpy arrays,
dtypes and scalars it holds, the one-cycle scheduler class; a restricted ``getattr`` reaches only the functions
these classes keep as values). Anything else (``os.system``, ``subprocess.Popen``, a user class ...) is
refused before it is created, with a :class:`CheckpointLoadError` naming the file and the global. The
allow-list is passed to each load, never added to torch's process-wide list: concurrent loads do not
interfere, and the user's own safe globals stay as they are. A trusted checkpoint that needs another class
loads after :func:`allow_checkpoint_globals`. A truncated file, a plain pickle or another format gives a
:class:`CheckpointLoadError` naming the file and the reason.

:func:`load_pickle_safely` reads pickle files that are not checkpoints (``tools/test.py --out`` predictions)
with the same kind of unpickler and :data:`PICKLE_SAFE_GLOBALS` (containers, numpy arrays, tensors).

Saving. MMEngine writes a checkpoint with ``open(path, 'wb').write(...)``: a process killed during the write
leaves a truncated ``epoch_N.pth`` under the final name. The local file backend writes checkpoint files
(``*.pth`` and ``last_checkpoint``) to a temporary file in the same folder and renames it over the target
(``os.replace``), so the file is either the previous one or the complete new one; the target keeps its mode
and owner, a symbolic link is written through (its target is replaced, the link stays), and a file with
several hard links or one that is not a regular file (a FIFO, a device) is written in place as MMEngine does.
Every other file is written exactly as MMEngine writes it.
"""
import _compat_pickle
import io
import os
import os.path as osp
import pickle
import secrets
import stat
import types
import warnings
import zipfile
from tempfile import TemporaryDirectory
from typing import Any, Optional, Union
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.fileio import get_file_backend
from mmengine.fileio.backends import LocalBackend, register_backend
from mmengine.logging import print_log
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.optim.scheduler.param_scheduler import OneCycleParamScheduler
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader


class SafeLoadError(RuntimeError):
    """A file was refused (it names a global outside the allow-list) or could not be read."""


class CheckpointLoadError(SafeLoadError):
    """A checkpoint file was refused (unsafe content) or could not be read (truncated, not a checkpoint)."""


class _Refused(pickle.UnpicklingError):
    """The restricted unpickler met a global (or a ``getattr``) outside its allow-list."""


def _function_attributes() -> dict:
    """Class -> names of functions MMEngine's checkpoints reference through ``getattr(class, name)``."""
    # MMEngine fills ``_statistics_methods`` only when the first HistoryBuffer is created, so a fresh
    # process (tools/test.py, init_detector) sees it empty: name the four defaults explicitly.
    return {HistoryBuffer: {'min', 'max', 'current', 'mean'} | set(HistoryBuffer._statistics_methods),
            OneCycleParamScheduler: {'_annealing_cos', '_annealing_linear'}}  # its state's ``anneal_func``


def _checkpoint_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to the functions pickle needs for MMEngine's checkpoints.

    Pickle writes a function stored as a value (``HistoryBuffer._statistics_methods`` holds
    ``HistoryBuffer.min`` ...; a one-cycle scheduler's state holds its ``anneal_func``) as
    ``getattr(HistoryBuffer, 'min')``. Only those attributes are reachable: the plain ``getattr`` would reach
    any module's globals (``getattr(HistoryBuffer.__init__, '__globals__')`` ... ``os.system``).
    """
    if isinstance(obj, type) and name in _function_attributes().get(obj, ()):
        return getattr(obj, name)
    raise _Refused(f'getattr({obj!r}, {name!r}) is not allowed in a checkpoint')


def _numpy_globals() -> list:
    multiarray = getattr(np, '_core', np.core).multiarray
    items = [np.ndarray, np.dtype]
    # numpy >= 2 pickles as numpy._core.multiarray.*, numpy 1.x as numpy.core.multiarray.*: accept both.
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        items += [(multiarray._reconstruct, f'{module}._reconstruct'), (multiarray.scalar, f'{module}.scalar')]
    # protocol 5 pickles a contiguous array as its buffer: numpy(._)core.numeric._frombuffer
    frombuffer = getattr(np, '_core', np.core).numeric._frombuffer
    items += [(frombuffer, f'{module}._frombuffer') for module in ('numpy.core.numeric', 'numpy._core.numeric')]
    # dtype classes of the numeric types (some numpy versions pickle dtypes through their class)
    for kind in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
                 np.float16, np.float32, np.float64):
        cls = type(np.dtype(kind))
        if cls is not np.dtype:
            items.append(cls)
    return items


#: Non-tensor globals MMEngine's checkpoints contain (found by listing
#: ``torch.serialization.get_unsafe_globals_in_checkpoint`` of checkpoints saved by MMEngine's Runner for an
#: MMDetection and an MMPretrain config): the message hub's history buffers and their numpy contents, and the
#: one-cycle scheduler class whose annealing function its state holds. ``builtins.getattr`` is the restricted
#: :func:`_checkpoint_getattr`, never the builtin.
CHECKPOINT_SAFE_GLOBALS = ([HistoryBuffer, OneCycleParamScheduler, (_checkpoint_getattr, 'builtins.getattr')] +
                           _numpy_globals())
_extra_globals: list = []


def allow_checkpoint_globals(*objects) -> None:
    """Allow more classes/functions in the checkpoints this process loads through MMEngine (for files you trust).

    Args:
        *objects: classes or functions, or ``(object, 'module.name')`` pairs, as for
            ``torch.serialization.add_safe_globals``.
    """
    _global_names(objects)  # a malformed entry fails here, not at the next load
    _extra_globals.extend(objects)


def _global_names(objects) -> dict:
    """{'module.name': object} of classes/functions or ``(object, 'module.name')`` pairs."""
    names = {}
    for item in objects:
        if isinstance(item, tuple):
            if len(item) != 2 or not isinstance(item[1], str):
                raise TypeError(f'an allowed global is an object or an (object, "module.name") pair, got {item!r}')
            names[item[1]] = item[0]
        else:
            names[f'{item.__module__}.{item.__qualname__}'] = item
    return names


def _torch_allowed_globals() -> dict:
    """torch's own weights-only allow-list (tensors, storages, dtypes, ``torch.Size``, containers)."""
    from torch import _weights_only_unpickler
    return dict(_weights_only_unpickler._get_allowed_globals())


def _checkpoint_globals() -> dict:
    # the restricted getattr overrides a builtin getattr the user registered with torch (reading a
    # checkpoint through MMEngine), allow_checkpoint_globals (an explicit choice for this loader) overrides it
    names = _torch_allowed_globals()
    names.update(_global_names(torch.serialization.get_safe_globals()))
    names.update(_global_names(CHECKPOINT_SAFE_GLOBALS))
    # protocol >= 4 names a function stored as a value by its qualified name instead of through getattr
    names.update({f'{cls.__module__}.{cls.__qualname__}.{attr}': getattr(cls, attr)
                  for cls, attrs in _function_attributes().items() for attr in attrs})
    names.update(_global_names(list(_extra_globals)))
    return names


def _restricted_pickle(allowed: dict) -> types.ModuleType:
    """A pickle module (``load``, ``Unpickler``) whose unpickler creates only the globals in ``allowed``.

    Every way a pickle names a global (GLOBAL, STACK_GLOBAL, INST, EXT) goes through ``find_class``, so an
    object outside ``allowed`` is never created or called.
    """

    class Unpickler(pickle.Unpickler):

        def find_class(self, module: str, name: str) -> Any:
            # protocols 0-2 write Python 2 names (``__builtin__.set``); map them as pickle's own find_class does
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
            full = f'{module}.{name}'
            if full in allowed:
                return allowed[full]
            raise _Refused(f'global {full} is not allowed')

    def load(file, **kwargs) -> Any:
        return Unpickler(file, **kwargs).load()

    module = types.ModuleType('mmdet_asl_restricted_pickle')
    module.Unpickler, module.load, module.UnpicklingError = Unpickler, load, pickle.UnpicklingError
    return module


def _weights_only_forced() -> bool:
    """torch refuses an explicit ``pickle_module`` when TORCH_FORCE_WEIGHTS_ONLY_LOAD is set."""
    return os.getenv('TORCH_FORCE_WEIGHTS_ONLY_LOAD', '0') in ('1', 'y', 'yes', 'true')


def _torch_load(f, allowed: dict, map_location=None) -> Any:
    if _weights_only_forced():
        # torch's own weights-only unpickler: its allow-list and add_safe_globals', none of mmdet_asl's
        return torch.load(f, map_location=map_location, weights_only=True)
    # weights_only=False only lets torch take ``pickle_module``: the restricted unpickler does the unpickling
    return torch.load(f, map_location=map_location, weights_only=False, pickle_module=_restricted_pickle(allowed))


def _is_refusal(exc: Exception) -> bool:
    """True when an unpickler stopped at a global it does not allow."""
    if isinstance(exc, _Refused):
        return True
    # torch's weights-only unpickler (TORCH_FORCE_WEIGHTS_ONLY_LOAD): recognised by its message
    text = str(exc)
    return isinstance(exc, pickle.UnpicklingError) and any(
        key in text for key in ('Unsupported global', 'GLOBAL', 'unrecognized function', 'not allowed'))


def _refused_part(exc: Exception) -> str:
    """The line of the message that names the refused global (the rest of torch's message is advice)."""
    lines = [line.strip() for line in str(exc).splitlines()]
    named = [line for line in lines if any(k in line for k in ('GLOBAL', 'global', 'unrecognized', 'not allowed'))]
    return (named or lines or [''])[0].rstrip('.')


def _unreadable_reason(exc: Exception, head: bytes) -> str:
    """Why a file that was not refused could not be read, from torch's error and the file's first bytes."""
    text = str(exc)
    if 'Unsupported operand 149' in text or (head[:1] == b'\x80' and head[1:2] >= b'\x04'
                                            and 'Unsupported operand' in text):
        return ('it was pickled with protocol 4 or higher, which torch\'s weights-only unpickler '
                '(TORCH_FORCE_WEIGHTS_ONLY_LOAD is set) cannot read; unset it to load the file with mmdet_asl\'s '
                'allow-list, or re-save it with torch.save\'s default protocol')
    if head[:1] == b'\x80' and 'magic number' in text:
        return ('it is a plain pickle, not a PyTorch checkpoint (torch.save writes a zip archive); pickles of '
                'predictions are read with mmdet_asl.compat.load_pickle_safely')
    return ('truncated (e.g. by a process killed while writing it) or not written by torch.save: '
            f'{type(exc).__name__}: {text}. If it is the latest checkpoint of an '
            'interrupted run, resume from the one before it: tools/train.py CONFIG --resume <earlier .pth>')


def _load_checkpoint_file(f, name: str, map_location=None) -> Any:
    """Load checkpoint ``f`` (a path or a binary buffer) with the checkpoint allow-list; errors name ``name``."""
    try:
        return _torch_load(f, _checkpoint_globals(), map_location)
    except Exception as exc:  # torch raises many types for a damaged file; all are reported the same way
        if _is_refusal(exc):
            raise CheckpointLoadError(
                f'{name}: refused to load: {_refused_part(exc)}. Only tensors, containers and the classes of '
                f'mmdet_asl.compat.CHECKPOINT_SAFE_GLOBALS are allowed in a checkpoint, since unpickling anything '
                f'else can run code. If you trust this file, allow the class with '
                f'mmdet_asl.compat.allow_checkpoint_globals(...) before loading it.') from None
        if isinstance(f, (str, os.PathLike)):
            with open(f, 'rb') as fh:
                head = fh.read(2)
        else:
            f.seek(0)
            head = f.read(2)
        raise CheckpointLoadError(f'{name}: not a readable PyTorch checkpoint: {_unreadable_reason(exc, head)}') \
            from None


def load_checkpoint_safely(filename: str, map_location=None) -> Any:
    """``torch.load(filename)`` unpickling only torch's weights-only types and :data:`CHECKPOINT_SAFE_GLOBALS`.

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        CheckpointLoadError: the file names a global outside the allow-list (nothing of it is executed),
            or it is not a complete checkpoint (truncated, empty, a plain pickle, another format).
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return _load_checkpoint_file(filename, filename, map_location)


def _storage_from_bytes(data: bytes) -> Any:
    """Stands for ``torch.storage._load_from_bytes`` (a tensor pickled with plain pickle holds its storage as a
    ``torch.save`` of it, which torch reads with an unrestricted ``torch.load``): read with the same allow-list."""
    return _torch_load(io.BytesIO(data), _pickle_globals(), map_location='cpu')


def _pickle_globals() -> dict:
    names = _torch_allowed_globals()
    names.update(_global_names(PICKLE_SAFE_GLOBALS))
    return names


#: Globals allowed in pickle files of predictions (``tools/test.py --out``, MMEngine's ``DumpResults``), besides
#: torch's weights-only allow-list (tensors, dtypes, ``torch.Size``, ``OrderedDict``, ``set``, bytes): numpy
#: arrays, dtypes and scalars, ``frozenset``, and tensors' storages, read back with the same allow-list.
PICKLE_SAFE_GLOBALS = _numpy_globals() + [frozenset, (_storage_from_bytes, 'torch.storage._load_from_bytes')]


def load_pickle_safely(filename: str) -> Any:
    """``pickle.load`` of ``filename`` restricted to containers, numbers, strings, numpy arrays and tensors.

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        SafeLoadError: the file names another global (nothing of it is executed), or it is not a complete pickle.
    """
    filename = osp.expanduser(str(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    with open(filename, 'rb') as f:
        try:
            return _restricted_pickle(_pickle_globals()).load(f)
        except Exception as exc:
            if _is_refusal(exc):
                raise SafeLoadError(
                    f'{filename}: refused to load: {_refused_part(exc)}. Only containers, numbers, strings, numpy '
                    'arrays and tensors (mmdet_asl.compat.PICKLE_SAFE_GLOBALS) are read from a pickle file, since '
                    'unpickling anything else can run code.') from None
            raise SafeLoadError(f'{filename}: not a readable pickle file (truncated or another format): '
                                f'{type(exc).__name__}: {exc}') from None


# ---------------------------------------------------------------------------------------------------------------
# MMEngine's checkpoint schemes, each fetching the file as MMEngine does and loading it with the allow-list.


def load_from_local(filename, map_location=None):
    """A local path (MMEngine's scheme ``''``)."""
    return load_checkpoint_safely(filename, map_location)


def _cached_download(url: str, model_dir: Optional[str], progress: bool) -> str:
    """The local copy of ``url`` in torch hub's cache (``<hub dir>/checkpoints``), downloaded if missing, as
    ``torch.hub.load_state_dict_from_url`` does."""
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached = osp.join(model_dir, osp.basename(urlparse(url).path))
    if not osp.exists(cached):
        torch.hub.download_url_to_file(url, cached, None, progress=progress)
    return cached


def _load_downloaded(path: str, model_dir: str, map_location) -> Any:
    # a zip holding one file is a torch < 1.6 checkpoint zipped by hand (torch.hub extracts it, too)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            members = z.infolist()
            if len(members) == 1 and not members[0].is_dir():
                z.extract(members[0], model_dir)
                path = osp.join(model_dir, members[0].filename)
    return load_checkpoint_safely(path, map_location)


def load_from_http(filename, map_location=None, model_dir=None, progress=os.isatty(0)):
    """``http://`` and ``https://``: downloaded once into torch hub's cache (rank 0 first), then loaded."""
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    rank, world_size = get_dist_info()
    if rank == 0:
        path = _cached_download(filename, model_dir, progress)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            path = _cached_download(filename, model_dir, progress)
    return _load_downloaded(path, model_dir, map_location)


def load_from_torchvision(filename, map_location=None):
    """``torchvision://NAME`` (``modelzoo://NAME``, deprecated): torchvision's URL of NAME."""
    model_urls = mmengine_checkpoint.get_torchvision_models()
    if filename.startswith('modelzoo://'):
        print_log('The URL scheme of "modelzoo://" is deprecated, please use "torchvision://" instead',
                  logger='current', level=30)
        model_name = filename[len('modelzoo://'):]
    else:
        model_name = filename[len('torchvision://'):]
    return load_from_http(model_urls[model_name], map_location=map_location)


def load_from_openmmlab(filename, map_location=None):
    """``open-mmlab://NAME`` / ``openmmlab://NAME``: the URL (or path under MMEngine's home) of NAME."""
    prefix = 'open-mmlab://' if filename.startswith('open-mmlab://') else 'openmmlab://'
    model_name = filename[len(prefix):]
    deprecated = mmengine_checkpoint.get_deprecated_model_names()
    if model_name in deprecated:
        print_log(f'{prefix}{model_name} is deprecated in favor of {prefix}{deprecated[model_name]}',
                  logger='current', level=30)
        model_name = deprecated[model_name]
    model_url = mmengine_checkpoint.get_external_models()[model_name]
    if model_url.startswith(('http://', 'https://')):
        return load_from_http(model_url, map_location=map_location)
    return load_checkpoint_safely(osp.join(mmengine_checkpoint._get_mmengine_home(), model_url), map_location)


def load_from_mmcls(filename, map_location=None):
    """``mmcls://NAME``: MMClassification's URL of NAME, the backbone's weights."""
    model_urls = mmengine_checkpoint.get_mmcls_models()
    checkpoint = load_from_http(model_urls[filename[len('mmcls://'):]], map_location=map_location)
    return mmengine_checkpoint._process_mmcls_checkpoint(checkpoint)


def load_from_pavi(filename, map_location=None):
    """``pavi://PATH``: downloaded from PAVI's model cloud to a temporary folder."""
    if not filename.startswith('pavi://'):
        raise ValueError(f'Expected filename startswith `pavi://`, but get {filename}')
    try:
        from pavi import modelcloud
    except ImportError:
        raise ImportError('Please install pavi to load checkpoint from modelcloud.')
    model = modelcloud.get(filename[len('pavi://'):])
    with TemporaryDirectory() as tmp_dir:
        downloaded = osp.join(tmp_dir, model.name)
        model.download(downloaded)
        return _load_checkpoint_file(downloaded, filename, map_location)


def load_from_ceph(filename, map_location=None, backend='petrel'):
    """``s3://`` / ``petrel://`` (optionally ``NAME:s3://``): read through MMEngine's petrel file backend."""
    data = get_file_backend(filename, backend_args={'backend': backend}).get(filename)
    with io.BytesIO(data) as buffer:
        return _load_checkpoint_file(buffer, filename, map_location)


#: MMEngine's checkpoint schemes (prefix patterns of ``CheckpointLoader``) and the loaders registered for them.
SAFE_SCHEMES = {'': load_from_local, 'http://': load_from_http, 'https://': load_from_http,
                'pavi://': load_from_pavi, r'(\S+\:)?s3://': load_from_ceph, r'(\S+\:)?petrel://': load_from_ceph,
                'modelzoo://': load_from_torchvision, 'torchvision://': load_from_torchvision,
                'open-mmlab://': load_from_openmmlab, 'openmmlab://': load_from_openmmlab,
                'mmcls://': load_from_mmcls}


# ---------------------------------------------------------------------------------------------------------------
# Atomic checkpoint writes


def is_checkpoint_path(filepath: str) -> bool:
    """The files written atomically: MMEngine's checkpoints (``*.pth``) and its ``last_checkpoint`` pointer."""
    return filepath.endswith('.pth') or osp.basename(filepath) == 'last_checkpoint'


class AtomicLocalBackend(LocalBackend):
    """MMEngine's local file backend; checkpoint files are written to a temporary name and renamed into place."""

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        if is_checkpoint_path(str(filepath)):
            _atomic_write(obj, str(filepath))
        else:
            super().put(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, os.PathLike], encoding: str = 'utf-8') -> None:
        if is_checkpoint_path(str(filepath)):
            _atomic_write(obj.encode(encoding), str(filepath))
        else:
            super().put_text(obj, filepath, encoding)


def _write_in_place(data: bytes, filepath: str) -> None:
    os.makedirs(osp.dirname(osp.abspath(filepath)), exist_ok=True)
    with open(filepath, 'wb') as f:
        f.write(data)


def _atomic_write(data: bytes, filepath: str) -> None:
    """Write ``data`` to a temporary file next to the file ``filepath`` resolves to, then rename it over it."""
    target = osp.realpath(filepath)  # through symbolic links: the link stays, its target gets the data
    try:
        old = os.stat(target)
    except FileNotFoundError:
        old = None
    if old is not None and (not stat.S_ISREG(old.st_mode) or old.st_nlink > 1):
        # a rename would detach the other hard links, or replace a FIFO/device with a regular file
        return _write_in_place(data, filepath)
    folder = osp.dirname(target)
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(folder, f'.{osp.basename(target)}.{secrets.token_hex(4)}.tmp')
    try:
        # 0o666 minus the umask, as open(path, 'wb') creates a new file
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_BINARY', 0), 0o666)
    except PermissionError:  # a folder we may not create files in, holding a file we may write
        return _write_in_place(data, filepath)
    try:
        with os.fdopen(fd, 'wb') as f:
            if old is not None and not _take_over(f.fileno(), old):
                raise _KeepInPlace
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except _KeepInPlace:
        os.remove(tmp)
        _write_in_place(data, filepath)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


class _KeepInPlace(Exception):
    """The temporary file cannot get the old file's owner: write the old file in place instead."""


def _take_over(fd: int, old: os.stat_result) -> bool:
    """Give the temporary file the mode and owner of the file it replaces; False where the owner can't be set."""
    if os.chmod in os.supports_fd:
        os.chmod(fd, stat.S_IMODE(old.st_mode))
    new = os.fstat(fd)
    if hasattr(os, 'fchown') and (new.st_uid, new.st_gid) != (old.st_uid, old.st_gid):
        try:
            os.fchown(fd, old.st_uid, old.st_gid)
        except PermissionError:
            return False
    return True


if hasattr(torch.serialization, 'get_safe_globals'):  # torch >= 2.5
    for _prefix, _loader in SAFE_SCHEMES.items():
        CheckpointLoader.register_scheme(prefixes=_prefix, loader=_loader, force=True)
else:
    warnings.warn(f'torch {torch.__version__} has no torch.serialization.get_safe_globals: checkpoints are '
                  'unpickled without the mmdet_asl allow-list (MMEngine default). Use torch >= 2.5 to load them '
                  'safely.')
register_backend('local', AtomicLocalBackend, force=True, prefixes='')
