"""The environment check passes here and fails with a readable message when mmcv's ops are missing."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mmdet_asl

CHECK_ENV = Path(__file__).resolve().parents[1] / 'tools' / 'misc' / 'check_env.py'


def run_env_check(extra_path=None, module=False):
    env = None
    if extra_path is not None:
        import os
        env = dict(os.environ, PYTHONPATH=str(extra_path))
    cmd = [sys.executable, '-m', 'mmdet_asl.env'] if module else [sys.executable, str(CHECK_ENV)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize('module', [False, True])
def test_env_check_passes_in_this_environment(module):
    result = run_env_check(module=module)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'mmcv ops     CPU ops ok (nms runs)' in result.stdout
    assert 'mmcv cuda    ' in result.stdout
    for name in ('torch', 'torchvision', 'mmengine', 'mmcv', 'mmdet', 'mmpretrain', 'timm', 'pycocotools'):
        assert name in result.stdout
    assert mmdet_asl.__version__ in result.stdout
    assert 'unknown' not in result.stdout  # pycocotools has no __version__: read from its metadata


def test_env_check_fails_readably_without_mmcv_ops(tmp_path):
    # A "lite" mmcv (built without MMCV_WITH_OPS): the package imports, its compiled extension does not.
    fake = tmp_path / 'mmcv'
    (fake / 'ops').mkdir(parents=True)
    (fake / '__init__.py').write_text("__version__ = '2.1.0'\n")
    (fake / 'ops' / '__init__.py').write_text(textwrap.dedent("""
        raise ImportError("libtorch_cpu.so: undefined symbol: _ZN3c10...  (mmcv._ext)")
    """))
    result = run_env_check(extra_path=tmp_path)
    assert result.returncode != 0
    assert 'mmcv ops     FAILED' in result.stdout
    assert 'without its compiled ops, or they were built against another torch' in result.stderr
    assert '--no-build-isolation' in result.stderr and 'tools/setup_env.sh' in result.stderr


def test_env_check_reports_missing_package(tmp_path):
    fake = tmp_path / 'timm'
    fake.mkdir()
    (fake / '__init__.py').write_text("raise ImportError('timm is broken')\n")
    result = run_env_check(extra_path=tmp_path)
    assert result.returncode != 0
    assert 'timm         missing (ImportError: timm is broken)' in result.stdout


def run_main(monkeypatch, capsys, cuda_device, cuda_ops):
    import mmcv.ops
    import torch

    from mmdet_asl import env
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: cuda_device)
    monkeypatch.setattr(mmcv.ops, 'get_compiling_cuda_version', lambda: '12.1' if cuda_ops else 'not available')
    status = env.main([])
    return status, capsys.readouterr()


def test_env_check_names_missing_cuda_ops_on_a_gpu_machine(monkeypatch, capsys):
    status, out = run_main(monkeypatch, capsys, cuda_device=True, cuda_ops=False)
    assert status == 2
    assert 'mmcv cuda    not compiled' in out.out
    assert 'FORCE_CUDA=1' in out.err and 'docs/installation.md' in out.err
    status, out = run_main(monkeypatch, capsys, cuda_device=True, cuda_ops=True)
    assert status == 0 and 'mmcv cuda    compiled for CUDA 12.1' in out.out and not out.err


def test_env_check_cpu_machine_with_cpu_only_mmcv_passes_and_says_so(monkeypatch, capsys):
    status, out = run_main(monkeypatch, capsys, cuda_device=False, cuda_ops=False)
    assert status == 0
    assert 'CPU only' in out.out and 'for a GPU see docs/installation.md' in out.out


def test_env_check_mmpretrain_is_optional(tmp_path):
    fake = tmp_path / 'mmpretrain'
    fake.mkdir()
    (fake / '__init__.py').write_text("raise ImportError('No module named mmpretrain')\n")
    result = run_env_check(extra_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'mmpretrain   not installed (optional, for classification' in result.stdout
