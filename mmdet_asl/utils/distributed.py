"""Distributed training and testing on CPUs with MMEngine's launchers (``--launcher pytorch`` or ``slurm``).

MMEngine's ``init_dist`` pins each process to a GPU (``torch.cuda.set_device``) before it creates the process
group, and its DDP wrapper passes ``device_ids=[LOCAL_RANK]``; both fail on a machine without a CUDA device.
On such a machine the entry points (``tools/train.py``, ``tools/test.py``) create the process group
themselves, with the ``gloo`` backend, from the same environment the launcher sets, and wrap the model for CPU
(``device_ids=None``); the Runner then finds the group initialised and skips its own ``init_dist``. On GPUs
nothing changes.
"""
import os
import subprocess

import torch
import torch.distributed as torch_dist

CPU_BACKEND = 'gloo'


def _slurm_environment(port=None) -> None:
    """RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT from Slurm's variables, as MMEngine sets them
    (an existing MASTER_ADDR / MASTER_PORT is kept)."""
    try:
        proc_id, ntasks = int(os.environ['SLURM_PROCID']), int(os.environ['SLURM_NTASKS'])
    except KeyError as exc:
        raise RuntimeError(f'--launcher slurm needs the Slurm variable {exc.args[0]} (run the job through srun, '
                           'e.g. tools/slurm_train.sh)') from None
    if 'MASTER_ADDR' not in os.environ:
        nodes = os.environ.get('SLURM_NODELIST', '')
        os.environ['MASTER_ADDR'] = subprocess.getoutput(f'scontrol show hostname {nodes} | head -n1').strip()
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ['WORLD_SIZE'] = str(ntasks)
    os.environ['RANK'] = str(proc_id)
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')


def setup_cpu_distributed(cfg) -> bool:
    """Prepare ``cfg`` (launcher already set) for a distributed run on CPUs; returns True when it did.

    Does nothing without a launcher, when a CUDA device is present, or when a process group already exists.
    Otherwise: ``env_cfg.dist_cfg.backend`` becomes ``gloo`` (NCCL needs GPUs), the process group is created
    from the launcher's environment, and ``model_wrapper_cfg`` (MMEngine's default DDP wrapper unless the config
    names one) gets ``device_ids=None``. ``--launcher mpi`` on CPUs is refused.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher in (None, 'none') or torch.cuda.is_available() or torch_dist.is_initialized():
        return False
    if launcher not in ('pytorch', 'slurm'):
        raise RuntimeError(f'--launcher {launcher} on a machine without CUDA: use --launcher pytorch '
                           '(tools/dist_train.sh) or slurm, which run on CPUs with the gloo backend')
    if cfg.get('env_cfg') is None:
        cfg.env_cfg = dict()
    env_cfg = cfg.env_cfg
    dist_cfg = dict(env_cfg.get('dist_cfg') or {})
    backend = dist_cfg.pop('backend', 'nccl')
    if backend not in ('nccl', CPU_BACKEND):
        raise RuntimeError(f'env_cfg.dist_cfg.backend={backend!r} cannot run without CUDA; use {CPU_BACKEND!r}')
    env_cfg['dist_cfg'] = dict(dist_cfg, backend=CPU_BACKEND)
    if launcher == 'slurm':
        _slurm_environment(dist_cfg.pop('port', None))
    dist_cfg.pop('port', None)
    torch_dist.init_process_group(backend=CPU_BACKEND, **dist_cfg)
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel', broadcast_buffers=False,
                                                   find_unused_parameters=cfg.get('find_unused_parameters',
                                                                                  False))
    cfg.model_wrapper_cfg = dict(wrapper, device_ids=None)
    return True
