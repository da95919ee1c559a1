"""``import mmdet_asl`` changes nothing but registries: a fresh process snapshots torch's, numpy's, Python's and
MMEngine's observable state, and MMEngine's file writes (symbolic link, hard link, mode, FIFO), before and after
the import. Compiling the ASL kernel patches two inductor options only inside dynamo's compile lock: another
thread's compile does not see them, and they are back afterwards."""
import json
import subprocess
import sys
import threading

import pytest
import torch

PROBE = r'''
import copyreg, json, logging, os, stat, sys, threading, warnings
import numpy as np, torch
import torch._dynamo.config as dynamo_config, torch._inductor.config as inductor_config
import mmengine.runner, mmdet.models, mmdet.datasets, mmdet.evaluation  # the stack: its own imports are not ours
try:
    import mmpretrain.models, mmpretrain.datasets, mmpretrain.evaluation
except ImportError:
    pass
from mmengine.fileio import get_file_backend


def umask():
    with open('/proc/self/status') as f:
        return next(line for line in f if line.startswith('Umask:')).split()[1]


def state():
    return dict(
        warnings_filters=[repr(f) for f in warnings.filters], default_dtype=str(torch.get_default_dtype()),
        safe_globals=sorted(repr(g) for g in torch.serialization.get_safe_globals()),
        inductor_config=repr(sorted(inductor_config.get_config_copy().items())),
        dynamo_config=repr(sorted(dynamo_config.get_config_copy().items())),
        num_threads=torch.get_num_threads(), deterministic=torch.are_deterministic_algorithms_enabled(),
        cudnn=[torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic],
        matmul_precision=torch.get_float32_matmul_precision(), grad=torch.is_grad_enabled(),
        anomaly=torch.is_anomaly_enabled(), torch_rng=torch.random.get_rng_state().tolist(),
        numpy_rng=repr(np.random.get_state()), numpy_err=repr(np.geterr()), umask=umask(),
        environ=sorted(os.environ.items()), sys_path=list(sys.path), cwd=os.getcwd(),
        root_logger=[logging.getLogger().level, [repr(h) for h in logging.getLogger().handlers]],
        copyreg=sorted(map(repr, copyreg.dispatch_table)), hub_dir=torch.hub.get_dir())


def writes(folder):
    """What MMEngine's file backend does to a symlink, a hard link, a 0640 file, a FIFO and a new file."""
    out = {}
    os.makedirs(folder)
    for name in ('log.txt', 'epoch_1.pth', 'last_checkpoint'):
        put = lambda path, data: (get_file_backend(path).put_text(data, path) if name != 'epoch_1.pth'
                                  else get_file_backend(path).put(data.encode(), path))
        p = lambda kind: os.path.join(folder, f'{kind}_{name}')
        with open(p('real'), 'w') as f:
            f.write('old')
        os.symlink(p('real'), p('link'))
        put(p('link'), 'via link')
        os.link(p('real'), p('hard'))
        put(p('hard'), 'via hard link')
        with open(p('mode'), 'w') as f:
            f.write('old')
        os.chmod(p('mode'), 0o640)
        put(p('mode'), 'new')
        put(p('new'), 'new')
        os.mkfifo(p('fifo'))
        got = []
        reader = threading.Thread(target=lambda: got.append(open(p('fifo'), 'rb').read()), daemon=True)
        reader.start()
        put(p('fifo'), 'via fifo')
        reader.join(5)
        out[name] = dict(
            link_is_link=os.path.islink(p('link')),
            real_after_all=open(p('real')).read(),
            hard_shares_inode=os.stat(p('hard')).st_ino == os.stat(p('real')).st_ino,
            mode=oct(stat.S_IMODE(os.stat(p('mode')).st_mode)), mode_content=open(p('mode')).read(),
            new_mode=oct(stat.S_IMODE(os.stat(p('new')).st_mode)),
            fifo_is_fifo=stat.S_ISFIFO(os.stat(p('fifo')).st_mode), fifo_reader_got=[g.decode() for g in got],
            leftovers=sorted(f for f in os.listdir(folder) if f.startswith('.')))
    return out


root = sys.argv[1]
before = dict(state=state(), writes=writes(os.path.join(root, 'before')))
import mmdet_asl  # noqa: E402
after = dict(state=state(), writes=writes(os.path.join(root, 'after')))
print(json.dumps(dict(before=before, after=after)))
'''


@pytest.fixture(scope='module')
def import_probe(tmp_path_factory):
    root = tmp_path_factory.mktemp('probe')
    out = subprocess.run([sys.executable, '-c', PROBE, str(root)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_changes_no_global_state(import_probe):
    before, after = import_probe['before']['state'], import_probe['after']['state']
    changed = {key: (before[key], after[key]) for key in before if before[key] != after[key]}
    assert not changed, f'import mmdet_asl changed: {sorted(changed)}'


def test_mmengine_file_writes_keep_their_semantics(import_probe):
    before, after = import_probe['before']['writes'], import_probe['after']['writes']
    # MMEngine's own behaviour, written out (the comparison below is against it)
    assert before['log.txt'] == dict(link_is_link=True, real_after_all='via hard link',
                                     hard_shares_inode=True, mode='0o640', mode_content='new',
                                     new_mode=before['log.txt']['new_mode'], fifo_is_fifo=True,
                                     fifo_reader_got=['via fifo'], leftovers=[])
    for name in before:
        assert after[name] == before[name], name


def test_checkpoint_writes_stay_atomic(tmp_path, monkeypatch):
    import os

    from mmengine.fileio import get_file_backend

    import mmdet_asl  # noqa: F401
    path = tmp_path / 'epoch_1.pth'
    path.write_bytes(b'complete old checkpoint')
    os.chmod(path, 0o640)

    def killed(src, dst):  # the process dies after the data was written, before the rename
        raise KeyboardInterrupt

    monkeypatch.setattr(os, 'replace', killed)
    with pytest.raises(KeyboardInterrupt):
        get_file_backend(str(path)).put(b'new', str(path))
    monkeypatch.undo()
    assert path.read_bytes() == b'complete old checkpoint' and sorted(os.listdir(tmp_path)) == ['epoch_1.pth']
    get_file_backend(str(path)).put(b'new', str(path))
    assert path.read_bytes() == b'new' and oct(os.stat(path).st_mode & 0o777) == '0o640'


def test_compile_options_do_not_reach_another_threads_compile():
    """The kernel compiles with two inductor thresholds patched process-wide; dynamo holds its compile lock
    meanwhile, so a compile started from another thread at that moment waits and sees torch's defaults."""
    import torch._inductor.config as inductor_config

    from mmdet_asl.ops.asl.function import INDUCTOR_OPTIONS, asymmetric_loss
    defaults = {key: getattr(inductor_config, key) for key in INDUCTOR_OPTIONS}
    assert defaults != INDUCTOR_OPTIONS
    seen = dict(kernel=[], other=[])

    def record(gm, example_inputs):  # the other thread's backend: what its compile sees
        seen['other'].append({key: getattr(inductor_config, key) for key in INDUCTOR_OPTIONS})
        return gm.forward

    other = threading.Thread(target=lambda: torch.compile(lambda x: x.cos() * 2, backend=record)(torch.ones(3)))

    def during_kernel_compile(graph):  # runs inside the kernel's inductor compile
        if not seen['kernel']:
            seen['kernel'].append({key: getattr(inductor_config, key) for key in INDUCTOR_OPTIONS})
            other.start()
            other.join(3)  # it cannot finish while the kernel holds the compile lock
            seen['kernel'].append(other.is_alive())

    x, y = torch.randn(6, 5), (torch.rand(6, 5) > 0.5).float()
    with inductor_config.patch(post_grad_custom_post_pass=during_kernel_compile, fx_graph_cache=False):
        asymmetric_loss(x, y, gamma_pos=0.123, impl='compiled')  # a loss configuration compiled only here
    other.join(60)
    assert seen['kernel'] == [INDUCTOR_OPTIONS, True]  # patched for the kernel; the other compile was waiting
    assert seen['other'] == [defaults]
    assert {key: getattr(inductor_config, key) for key in INDUCTOR_OPTIONS} == defaults
