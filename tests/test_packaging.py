"""A wheel built from the checkout carries configs/, tools/ and model-index.yml as mmdet_asl/.mim/ (setup.py's
build hook), and an installed wheel resolves ``mmdet_asl::`` config paths without the checkout."""
import glob
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

import yaml

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
IGNORED = shutil.ignore_patterns('.git', '.venv', 'data', 'work_dirs', 'build', 'dist', '*.egg-info', '.mim',
                                 '__pycache__', '.pytest_cache')


def test_wheel_ships_configs_and_resolves_package_paths(tmp_path):
    src = tmp_path / 'src'
    shutil.copytree(ROOT, src, ignore=IGNORED)
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '-w',
                    str(tmp_path / 'dist'), str(src)], check=True, capture_output=True, timeout=300)
    wheel = glob.glob(str(tmp_path / 'dist' / 'mmdet_asl-*.whl'))[0]
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = [osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)]
    assert configs and all(f'mmdet_asl/.mim/{c}' in names for c in configs)
    assert 'mmdet_asl/.mim/tools/train.py' in names and 'mmdet_asl/.mim/tools/test.py' in names
    if osp.exists(osp.join(ROOT, 'model-index.yml')):
        assert 'mmdet_asl/.mim/model-index.yml' in names
        with open(osp.join(ROOT, 'model-index.yml')) as f:
            assert all(f'mmdet_asl/.mim/{m}' in names for m in yaml.safe_load(f)['Import'])

    site = tmp_path / 'site'
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--target', str(site), wheel],
                   check=True, capture_output=True, timeout=300)
    user = tmp_path / 'user_config.py'
    user.write_text("_base_ = 'mmdet_asl::multilabel/resnet18-w16_asl_1xb64_fashion-canvas.py'\n"
                    "model = dict(head=dict(loss=dict(gamma_neg=3.0)))\n")
    code = ('import mmdet_asl\nfrom mmengine.config import Config\n'
            f'cfg = Config.fromfile({str(user)!r})\n'
            'print(mmdet_asl.__file__)\nprint(cfg.model.head.loss.type, cfg.model.head.loss.gamma_neg)\n')
    env = dict(os.environ, PYTHONPATH=str(site))
    out = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path), env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    file_line, loss_line = out.stdout.strip().splitlines()[-2:]
    assert file_line.startswith(str(site))  # the installed copy, not the checkout
    assert loss_line == 'mmdet.AsymmetricLoss 3.0'
