"""tools/dist_train.sh and tools/slurm_train.sh on a machine without CUDA: a 2-process run through
tools/train.py (--launcher pytorch, and --launcher slurm under an srun stand-in that starts the tasks) trains
the tiny detector with the gloo backend and both ranks end with the same weights, with the config as a user
writes it (no backend or DDP settings) and the interpreter the scripts pick themselves; tools/slurm_{train,test}.sh
hand srun the MMDetection arguments."""
import os
import os.path as osp
import socket
import subprocess

import pytest
import torch

from tiny_detection import make_coco, tiny_config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TESTS = osp.dirname(osp.abspath(__file__))


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _env(**extra):
    # Only what a user's shell has: the scripts choose the checkout's .venv themselves (no PATH change here).
    env = {k: v for k, v in os.environ.items() if k not in ('VIRTUAL_ENV', 'CONDA_PREFIX', 'PYTHON')}
    env.update(PYTHONPATH=TESTS + os.pathsep + os.environ.get('PYTHONPATH', ''), OMP_NUM_THREADS='1')
    env.update(extra)
    return env


def _rank_config(tmp_path):
    """The tiny detector with MMDetection's GPU defaults (NCCL, no DDP settings), plus a hook that saves each
    rank's weights."""
    make_coco(str(tmp_path / 'data'), num_images=8)
    cfg = tiny_config(str(tmp_path / 'data'), str(tmp_path / 'work'), max_epochs=1,
                      extra_hooks=[dict(type='RankWeightsHook')])
    cfg.custom_imports = dict(imports=list(cfg.custom_imports.imports) + ['ddp_cpu_helpers'],
                              allow_failed_imports=False)
    # as in MMDetection's default_runtime.py: written for GPUs
    cfg.env_cfg.dist_cfg = dict(backend='nccl')
    assert 'model_wrapper_cfg' not in cfg
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
    path = str(tmp_path / 'tiny.py')
    cfg.dump(path)
    return path


def _check_ranks_identical(work):
    before = torch.load(work / 'rank0_before.pth', weights_only=True)
    ranks = [torch.load(work / f'rank{r}_after.pth', weights_only=True) for r in (0, 1)]  # rank 1 exists: 2 ranks
    params = [k for k in before if not k.endswith(('running_mean', 'running_var', 'num_batches_tracked'))]
    # BatchNorm statistics stay per rank (broadcast_buffers=False); every parameter and gamma- must agree
    for key in params:
        torch.testing.assert_close(ranks[0][key], ranks[1][key], rtol=0, atol=0, msg=key)
    assert any(not torch.equal(before[k], ranks[0][k]) for k in params if 'bbox_head' in k)


def test_two_process_gloo_training_keeps_ranks_identical(tmp_path):
    path = _rank_config(tmp_path)
    proc = subprocess.run(['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), path, '2'], cwd=str(tmp_path),
                          env=_env(PORT=str(_free_port()), NNODES='1', NODE_RANK='0', MASTER_ADDR='127.0.0.1'),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    _check_ranks_identical(tmp_path / 'work')


def test_slurm_launcher_trains_two_cpu_tasks(tmp_path):
    """tools/slurm_train.sh with an srun that starts --ntasks copies of the command with Slurm's variables."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'srun').write_text(
        '#!/usr/bin/env bash\n'
        'while [[ "$1" == -* ]]; do case "$1" in --ntasks=*) N=${1#--ntasks=};; -p) shift;; esac; shift; done\n'
        'for ((i = 0; i < N; i++)); do SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_NTASKS=$N SLURM_NODELIST=localhost '
        '"$@" & done\nstatus=0; for job in $(jobs -p); do wait $job || status=1; done; exit $status\n')
    (bin_dir / 'srun').chmod(0o755)
    path = _rank_config(tmp_path)
    env = _env(PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}', GPUS='2', GPUS_PER_NODE='2',
               MASTER_ADDR='127.0.0.1', MASTER_PORT=str(_free_port()))
    proc = subprocess.run(['bash', osp.join(ROOT, 'tools', 'slurm_train.sh'), 'cpu', 'job', path,
                           str(tmp_path / 'work')], cwd=str(tmp_path), env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    _check_ranks_identical(tmp_path / 'work')


def test_cpu_distributed_setup_refuses_what_cannot_run(monkeypatch):
    from mmengine.config import Config

    from mmdet_asl.utils.distributed import setup_cpu_distributed
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert setup_cpu_distributed(Config(dict(launcher='none'))) is False
    with pytest.raises(RuntimeError, match='--launcher mpi'):
        setup_cpu_distributed(Config(dict(launcher='mpi')))
    with pytest.raises(RuntimeError, match="backend='mpi' cannot run without CUDA"):
        setup_cpu_distributed(Config(dict(launcher='pytorch', env_cfg=dict(dist_cfg=dict(backend='mpi')))))
    for name in ('SLURM_PROCID', 'SLURM_NTASKS'):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match='SLURM_PROCID'):
        setup_cpu_distributed(Config(dict(launcher='slurm')))


def _fake_srun(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'srun').write_text('#!/usr/bin/env bash\necho "$@" > "$SRUN_LOG"\n')
    (bin_dir / 'srun').chmod(0o755)
    return dict(PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}', SRUN_LOG=str(tmp_path / 'srun.log'))


def test_slurm_scripts_hand_srun_the_task_layout(tmp_path):
    env = dict(os.environ, **_fake_srun(tmp_path), GPUS='16', GPUS_PER_NODE='8', CPUS_PER_TASK='4')
    subprocess.run(['bash', osp.join(ROOT, 'tools', 'slurm_train.sh'), 'part', 'job', 'cfg.py', 'wd',
                    '--cfg-options', 'a=1'], env=env, check=True, capture_output=True)
    args = (tmp_path / 'srun.log').read_text().split()
    for flag in ('-p', 'part', '--job-name=job', '--gres=gpu:8', '--ntasks=16', '--ntasks-per-node=8',
                 '--cpus-per-task=4', '--kill-on-bad-exit=1', 'cfg.py', '--work-dir=wd', '--launcher=slurm',
                 '--cfg-options', 'a=1'):
        assert flag in args
    assert args[args.index('-u') + 1].endswith('tools/train.py')
    subprocess.run(['bash', osp.join(ROOT, 'tools', 'slurm_test.sh'), 'part', 'job', 'cfg.py', 'ckpt.pth'],
                   env=env, check=True, capture_output=True)
    args = (tmp_path / 'srun.log').read_text().split()
    assert args[args.index('-u') + 1].endswith('tools/test.py')
    assert args[-3:] == ['cfg.py', 'ckpt.pth', '--launcher=slurm']
