"""tools/dist_train.sh: a 2-process gloo run through tools/train.py --launcher pytorch trains the tiny detector
and both ranks end with the same weights; tools/slurm_{train,test}.sh hand srun the MMDetection arguments."""
import os
import os.path as osp
import socket
import subprocess
import sys

import torch

from tiny_detection import make_coco, tiny_config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TESTS = osp.dirname(osp.abspath(__file__))


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _env(**extra):
    env = dict(os.environ, PATH=osp.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''),
               PYTHONPATH=TESTS + os.pathsep + os.environ.get('PYTHONPATH', ''), OMP_NUM_THREADS='1')
    env.update(extra)
    return env


def test_two_process_gloo_training_keeps_ranks_identical(tmp_path):
    make_coco(str(tmp_path / 'data'), num_images=8)
    cfg = tiny_config(str(tmp_path / 'data'), str(tmp_path / 'work'), max_epochs=1,
                      extra_hooks=[dict(type='RankWeightsHook')])
    cfg.custom_imports = dict(imports=list(cfg.custom_imports.imports) + ['ddp_cpu_helpers'],
                              allow_failed_imports=False)
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    # CPU modules take no device_ids (MMEngine passes [LOCAL_RANK] unless the wrapper config says otherwise)
    cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', broadcast_buffers=False, device_ids=None)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
    path = str(tmp_path / 'tiny.py')
    cfg.dump(path)
    proc = subprocess.run(['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), path, '2'], cwd=str(tmp_path),
                          env=_env(PORT=str(_free_port()), NNODES='1', NODE_RANK='0', MASTER_ADDR='127.0.0.1'),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    work = tmp_path / 'work'
    before = torch.load(work / 'rank0_before.pth', weights_only=True)
    ranks = [torch.load(work / f'rank{r}_after.pth', weights_only=True) for r in (0, 1)]  # rank 1 exists: 2 ranks
    params = [k for k in before if not k.endswith(('running_mean', 'running_var', 'num_batches_tracked'))]
    # BatchNorm statistics stay per rank (broadcast_buffers=False); every parameter and gamma- must agree
    for key in params:
        torch.testing.assert_close(ranks[0][key], ranks[1][key], rtol=0, atol=0, msg=key)
    assert any(not torch.equal(before[k], ranks[0][k]) for k in params if 'bbox_head' in k)


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
