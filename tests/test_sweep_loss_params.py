"""tools/analysis_tools/sweep_loss_params.py trains a config over a grid (tiny canvases, 1 epoch), collects the
metric of every run, tabulates and plots it, and reuses finished runs."""
import json
import os.path as osp
import sys

import pytest

from test_multilabel_datasets import fashion_source, mfc

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis_tools'))
import sweep_loss_params as sweep  # noqa: E402

DEMO = osp.join(ROOT, 'configs', 'multilabel', 'resnet18-w16_asl_1xb64_fashion-canvas.py')


def test_values_and_summary():
    assert [sweep.parse_value(v) for v in ('2', '0.05', 'full')] == [2, 0.05, 'full']
    runs = [dict(value=0, seed=0, metric=50.0), dict(value=0, seed=1, metric=52.0), dict(value=4, seed=0, metric=60.0)]
    summary = sweep.summarise(runs)
    assert summary[0] == (51.0, pytest.approx(2 ** 0.5), 2)
    assert summary[4][0] == 60.0 and summary[4][2] == 1
    assert '| 4 | 60.00 | nan | 1 |' in sweep.table(summary, 'gamma_neg', 'mAP')


def test_sweep_runs_collects_and_resumes(tmp_path, capsys):
    canvases = tmp_path / 'canvas'
    assert mfc.main(['--src', fashion_source(tmp_path), '--out', str(canvases), '--num-train', '8',
                     '--num-test', '4']) == 0
    opts = [f'{loader}.{k}' for loader in ('train_dataloader', 'val_dataloader') for k in
            (f'dataset.data_root={canvases}', 'num_workers=0', 'persistent_workers=False', 'batch_size=4')]
    opts += ['test_dataloader=None', 'test_evaluator=None', 'test_cfg=None', 'default_hooks.checkpoint.interval=-1']
    work = tmp_path / 'sweep'
    argv = [DEMO, '--param', 'model.head.loss.gamma_pos,model.head.loss.gamma_neg', '--values', '0', '2',
            '--name', 'gamma', '--epochs', '1', '--work-dir', str(work), '--quiet', '--cfg-options'] + opts
    assert sweep.main(argv) == 0
    results = json.loads((work / 'results.json').read_text())
    assert [(r['value'], r['seed']) for r in results['runs']] == [(0, 0), (2, 0)]
    assert all(0 <= r['metric'] <= 100 for r in results['runs'])
    cfg_dump = (work / 'gamma=2_seed0').rglob('*.py')
    assert any("gamma_pos=2" in p.read_text() and "gamma_neg=2" in p.read_text() for p in cfg_dump)
    assert (work / 'sweep.png').stat().st_size > 0
    assert '| gamma |' in (work / 'results.md').read_text()
    capsys.readouterr()
    assert sweep.main(argv) == 0  # finished runs are reused: no training subprocess this time
    assert '[sweep]' not in capsys.readouterr().out
    with pytest.raises(RuntimeError, match='gamma=0_seed0.*use another --work-dir'):
        sweep.main(argv + ['model.head.loss.clip=0.1'])  # same folder names, other overrides: not a reuse
    assert '[sweep]' not in capsys.readouterr().out
