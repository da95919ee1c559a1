"""Checkpoint safety for the pinned stack, applied when ``mmdet_asl`` is imported.

Loading. MMEngine 0.10.x loads local checkpoints with a plain ``torch.load``. Unpickling a file can run
any code the file names, so MMEngine's local loader is replaced by one that always uses
``torch.load(weights_only=True)`` with an allow-list of exactly the non-tensor classes MMEngine writes
into its own checkpoints (:data:`CHECKPOINT_SAFE_GLOBALS`): the message hub's ``HistoryBuffer`` and the
numpy arrays, dtypes and scalars it holds, and the one-cycle scheduler class (a restricted ``getattr``
reaches only the functions these classes keep as values). ``--resume``, ``load_from`` and backbone
``init_cfg`` weights all load; a file that names anything else (``os.system``, ``subprocess.Popen``, a
user class ...) is refused before that object is created, with a :class:`CheckpointLoadError` naming the
file and the refused global. A checkpoint the user trusts that needs another class can be allowed
explicitly with :func:`allow_checkpoint_globals`. A truncated or non-checkpoint file gives a
:class:`CheckpointLoadError` naming the file as well.

This needs ``torch.serialization.safe_globals`` (torch >= 2.5); with an older torch, MMEngine's own loader is
kept and a warning says so at import.

Saving. MMEngine writes a checkpoint with ``open(path, 'wb').write(...)``: a process killed during the
write leaves a truncated ``epoch_N.pth`` under the final name. The local file backend is replaced by one
that writes to a temporary file in the same folder and renames it over the target (``os.replace``, atomic
on POSIX and Windows), so a checkpoint file is either the previous one or the complete new one.
"""
import os
import os.path as osp
import pickle
import tempfile
import warnings
from typing import Any, Union

import numpy as np
import torch
from mmengine.fileio.backends import LocalBackend, register_backend
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.optim.scheduler.param_scheduler import OneCycleParamScheduler
from mmengine.runner.checkpoint import CheckpointLoader


class CheckpointLoadError(RuntimeError):
    """A checkpoint file was refused (unsafe content) or could not be read (truncated, not a checkpoint)."""


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
    ``getattr(HistoryBuffer, 'min')``. Only those attributes are reachable; any other ``getattr`` is refused.
    """
    if isinstance(obj, type) and name in _function_attributes().get(obj, ()):
        return getattr(obj, name)
    raise pickle.UnpicklingError(f'getattr({obj!r}, {name!r}) is not allowed in a checkpoint')


def _numpy_globals() -> list:
    multiarray = getattr(np, '_core', np.core).multiarray
    items = [np.ndarray, np.dtype]
    # numpy >= 2 pickles as numpy._core.multiarray.*, numpy 1.x as numpy.core.multiarray.*: accept both.
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        items += [(multiarray._reconstruct, f'{module}._reconstruct'), (multiarray.scalar, f'{module}.scalar')]
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
#: one-cycle scheduler class whose annealing function its state holds.
CHECKPOINT_SAFE_GLOBALS = ([HistoryBuffer, OneCycleParamScheduler, (_checkpoint_getattr, 'builtins.getattr')] +
                           _numpy_globals())
_extra_globals: list = []


def allow_checkpoint_globals(*objects) -> None:
    """Allow more classes/functions in checkpoints this process loads (for files you trust).

    Args:
        *objects: classes or functions, as for ``torch.serialization.add_safe_globals``.
    """
    _extra_globals.extend(objects)


def _refusal(exc: Exception) -> bool:
    """True when the weights-only unpickler stopped at a global it does not allow."""
    text = str(exc)
    return isinstance(exc, pickle.UnpicklingError) and any(
        key in text for key in ('Unsupported global', 'GLOBAL', 'unrecognized function', 'not allowed'))


def _refused_part(exc: Exception) -> str:
    """The line of torch's message that names the refused global (the rest is generic advice)."""
    lines = [line.strip() for line in str(exc).splitlines()]
    named = [line for line in lines if any(k in line for k in ('GLOBAL', 'global', 'unrecognized', 'not allowed'))]
    return (named or lines or [''])[0].rstrip('.')


def load_checkpoint_safely(filename: str, map_location=None) -> Any:
    """``torch.load(filename, weights_only=True)`` with :data:`CHECKPOINT_SAFE_GLOBALS` allowed.

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        CheckpointLoadError: the file names a global outside the allow-list (nothing of it is executed),
            or it is not a complete checkpoint (truncated, empty, another format).
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    try:
        with torch.serialization.safe_globals(CHECKPOINT_SAFE_GLOBALS + _extra_globals):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file; all are reported the same way
        if _refusal(exc):
            raise CheckpointLoadError(
                f'{filename}: refused to load: {_refused_part(exc)}. Only tensors, containers and the classes of '
                f'mmdet_asl.compat.CHECKPOINT_SAFE_GLOBALS are allowed in a checkpoint, since unpickling anything '
                f'else can run code. If you trust this file, allow the class with '
                f'mmdet_asl.compat.allow_checkpoint_globals(...) before loading it.') from None
        raise CheckpointLoadError(
            f'{filename}: not a readable PyTorch checkpoint (truncated, e.g. by a process killed while writing '
            f'it, or not written by torch.save): {type(exc).__name__}: {exc}. If it is the latest checkpoint of an '
            f'interrupted run, resume from the one before it: tools/train.py CONFIG --resume <earlier .pth>') from None


_UMASK = os.umask(0)
os.umask(_UMASK)  # read once: mkstemp creates 0600 files, checkpoints get the usual 0666 & ~umask


class AtomicLocalBackend(LocalBackend):
    """MMEngine's local file backend, writing each file to a temporary name and renaming it into place."""

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        _atomic_write(obj, str(filepath))

    def put_text(self, obj: str, filepath: Union[str, os.PathLike], encoding: str = 'utf-8') -> None:
        _atomic_write(obj.encode(encoding), str(filepath))


def _atomic_write(data: bytes, filepath: str) -> None:
    folder = osp.dirname(osp.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(filepath)}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, filepath)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def load_from_local(filename, map_location):
    """MMEngine's local checkpoint scheme, loading through :func:`load_checkpoint_safely`."""
    return load_checkpoint_safely(filename, map_location)


if hasattr(torch.serialization, 'safe_globals'):  # torch >= 2.5; older torch keeps MMEngine's plain torch.load
    CheckpointLoader.register_scheme(prefixes='', force=True)(load_from_local)
else:
    warnings.warn(f'torch {torch.__version__} has no torch.serialization.safe_globals: checkpoints are unpickled '
                  'without the mmdet_asl allow-list (MMEngine default). Use torch >= 2.5 to load them safely.')
register_backend('local', AtomicLocalBackend, force=True, prefixes='')
