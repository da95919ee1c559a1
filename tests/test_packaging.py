"""A wheel built from the checkout carries configs/, tools/ and model-index.yml as mmdet_asl/.mim/ (setup.py's
build hook), and both installs (a wheel, and the editable one that tools/setup_env.sh makes) resolve
``mmdet_asl::`` config paths outside the checkout: the Runner builds the model, hooks, evaluator and datasets of
a user config that inherits a detection or a classification config through ``mmdet_asl::``."""
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


# What a user's own training script does with a config outside the checkout: import the plugin (MMEngine learns
# the `mmdet_asl::` prefix from it), parse, build a Runner (model, hooks, visualizer, evaluator), then the
# datasets and metrics (without data files). MMEngine tags what a `mmdet_asl::` base defines with
# _scope_='mmdet_asl'; each object must still come from the config's own library.
RUNNER_SCRIPT = """
import sys
import mmdet_asl
from mmengine.config import Config
from mmengine.registry import DATASETS, DefaultScope
from mmengine.runner import Runner
print(mmdet_asl.__file__)
for i, path in enumerate(sys.argv[1:]):
    cfg = Config.fromfile(path)
    cfg.work_dir = f'work_dir_{i}'
    runner = Runner.from_cfg(cfg)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, lazy_init=True))
        metrics = cfg.val_evaluator if isinstance(cfg.val_evaluator, list) else [cfg.val_evaluator]
        evaluator = runner.build_evaluator([dict(m, ann_file=None) if 'ann_file' in m else m for m in metrics])
    print(path, type(runner.model).__name__, type(dataset).__name__,
          [type(m).__name__ for m in evaluator.metrics], sorted(type(h).__name__ for h in runner.hooks)[:3])
"""

USER_CONFIGS = {
    'det.py': ("_base_ = 'mmdet_asl::demo/fcos_effnet-lite0_asl_deepforest.py'\n"
               "model = dict(backbone=dict(init_cfg=None))\n", ('FCOS', 'CocoDataset', ['CocoMetric'])),
    'flagship.py': ("_base_ = 'mmdet_asl::fcos/fcos_tresnetm_asl.py'\n"
                    "model = dict(backbone=dict(init_cfg=None))\n", ('FCOS', 'CocoDataset', ['CocoMetric'])),
    'multilabel.py': ("_base_ = 'mmdet_asl::multilabel/resnet18-w16_asl_1xb64_fashion-canvas.py'\n",
                      ('ImageClassifier', 'CocoMultiLabel', ['ASLMultiLabelMetric'])),
}


def build_user_configs(tmp_path, env=None, names=tuple(USER_CONFIGS)):
    """Run RUNNER_SCRIPT in ``tmp_path`` on the ``names`` of USER_CONFIGS; returns (the imported mmdet_asl file,
    {name: line})."""
    for name in names:
        (tmp_path / name).write_text(USER_CONFIGS[name][0])
    out = subprocess.run([sys.executable, '-c', RUNNER_SCRIPT, *names], cwd=str(tmp_path), env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    lines = out.stdout.strip().splitlines()
    module_file = next(line for line in lines if line.endswith('__init__.py'))
    return module_file, {line.split()[0]: line for line in lines if line.split() and line.split()[0] in USER_CONFIGS}


def check_user_configs(built, names=tuple(USER_CONFIGS)):
    for name in names:
        model, dataset, metrics = USER_CONFIGS[name][1]
        assert name in built, f'{name} was not built'
        assert f'{name} {model} {dataset} {metrics}' in built[name], built[name]


def test_setup_env_install_builds_package_path_configs_outside_the_checkout(tmp_path):
    module_file, built = build_user_configs(tmp_path)
    assert not module_file.startswith(str(tmp_path))
    check_user_configs(built)


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
    names = ('det.py', 'multilabel.py')  # the flagship's TResNet-M is built by the editable-install test
    module_file, built = build_user_configs(tmp_path, env, names=names)
    assert module_file.startswith(str(site))
    check_user_configs(built, names)
