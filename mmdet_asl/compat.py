"""Compatibility fixes for the pinned stack, applied when ``mmdet_asl`` is imported.

MMEngine 0.10.x loads local checkpoints with ``torch.load(filename, map_location=...)``. Since
torch 2.6 that defaults to ``weights_only=True``, which refuses the message hub MMEngine itself saves
in every checkpoint (``HistoryBuffer`` holding numpy arrays): ``--resume`` fails with an
UnpicklingError, and so does ``load_from`` of a full checkpoint. We re-register MMEngine's local-file
loader to pass ``weights_only=False``, which is what MMEngine did on the torch it was written for. It
only affects checkpoints MMEngine loads from a local path the user names (the same trust as before);
``torch.load`` elsewhere keeps torch's default.
"""
import os.path as osp

import torch
from mmengine.runner.checkpoint import CheckpointLoader


def _torch_defaults_to_weights_only() -> bool:
    major, minor = (int(v) for v in torch.__version__.split('+')[0].split('.')[:2])
    return (major, minor) >= (2, 6)


def load_from_local_full(filename, map_location):
    """MMEngine's ``load_from_local`` with ``weights_only=False`` (see the module docstring)."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=False)


if _torch_defaults_to_weights_only():
    CheckpointLoader.register_scheme(prefixes='', force=True)(load_from_local_full)
