"""tools/analysis_tools/asl_grid.py: the resume/skip logic, the difference to the best baseline and its standard
error, the negatives-per-positive count, and the options each run trains with, checked by hand."""
import argparse
import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from mmengine.config import Config

from test_canvas_axes import build, source  # noqa: F401  (a fixture: synthetic Fashion-MNIST files)
from test_detection_e2e import load_tool

grid = load_tool('analysis_tools/asl_grid')


def row(cell, loss, seed, mAP, epochs=6, dp=-0.1):
    return dict(cell=cell, loss=loss, seed=seed, epochs=epochs, mAP=mAP, CF1=mAP - 10, OF1=mAP - 5, dp=dp)


def forbid_training(monkeypatch):
    def no_training(*args):
        raise AssertionError('--report-only trained a run')
    monkeypatch.setattr(grid, 'run_one', no_training)


def test_pending_skips_finished_runs_of_the_same_schedule():
    results = [row('k3', 'bce', 0, 90.0), row('k3', 'asl', 0, 91.0, epochs=2)]
    todo = grid.pending(results, ['k3', 'k10'], ['bce', 'asl'], [0, 1], 6)
    # seed-major: every cell and loss at seed 0 before seed 1; the 2-epoch asl run does not count for 6 epochs
    assert todo == [('k3', 'asl', 0), ('k10', 'bce', 0), ('k10', 'asl', 0),
                    ('k3', 'bce', 1), ('k3', 'asl', 1), ('k10', 'bce', 1), ('k10', 'asl', 1)]
    assert grid.pending(results + [row(c, loss, s, 1.0) for c, loss, s in todo], ['k3', 'k10'], ['bce', 'asl'],
                        [0, 1], 6) == []


def test_difference_to_the_better_baseline_with_its_standard_error():
    results = ([row('k10', 'bce', s, v) for s, v in enumerate((80.0, 82.0, 84.0))]      # mean 82, sd 2
               + [row('k10', 'focal', s, v) for s, v in enumerate((79.0, 80.0, 81.0))]  # mean 80, sd 1
               + [row('k10', 'asl', s, v) for s, v in enumerate((83.0, 86.0, 89.0))])   # mean 86, sd 3
    d, se, best = grid.difference_to_best_baseline(results, 'k10', 'asl')
    assert best == 'bce'  # the baseline with the higher mean
    assert d == pytest.approx(4.0)
    assert se == pytest.approx(math.sqrt(3.0 ** 2 / 3 + 2.0 ** 2 / 3))
    assert grid.difference_to_best_baseline(results, 'k3', 'asl')[2] is None  # nothing in that cell


def test_table_marks_the_difference_only_for_asl_rows():
    results = [row('k3', 'bce', s, 90.0 + s) for s in range(2)] + [row('k3', 'asl', s, 92.0 + s) for s in range(2)]
    lines = grid.table(results, ['k3'], ['bce', 'asl']).splitlines()
    assert lines[2].startswith('| k3 | bce | 2 | 90.5 ± 0.7 |') and lines[2].endswith('| 90.0, 91.0 |  |')
    # sd 0.71 each: s.e. sqrt(0.5 / 2 + 0.5 / 2) = 0.71
    assert lines[3].endswith('| 92.0, 93.0 | +2.0 ± 0.7 (vs bce) |')


def test_negatives_per_positive_counts_image_class_pairs(tmp_path):
    coco = dict(images=[dict(id=1), dict(id=2)], categories=[dict(id=i) for i in (1, 2, 3, 4)],
                annotations=[dict(image_id=1, category_id=1), dict(image_id=1, category_id=1),  # one pair
                             dict(image_id=1, category_id=2), dict(image_id=2, category_id=3)])
    path = tmp_path / 'a.json'
    path.write_text(json.dumps(coco))
    assert grid.negatives_per_positive(str(path)) == pytest.approx((8 - 3) / 3)


def test_run_options_set_the_cell_classes_data_and_loss():
    opts = grid.run_options('k10_rho0.3', 'asl_m02', 2, 6, 1, data_root='/d')
    assert 'train_dataloader.dataset.data_root=/d/k10_rho0.3/' in opts
    assert 'data_preprocessor.num_classes=10' in opts and 'model.head.num_classes=10' in opts
    assert 'train_dataloader.dataset.drop_empty=False' in opts and 'randomness.seed=2' in opts
    assert {'model.head.loss.gamma_pos=0.0', 'model.head.loss.gamma_neg=4.0', 'model.head.loss.clip=0.2'} <= set(opts)
    assert 'model.head.num_classes=3' in grid.run_options('k3', 'bce', 0, 6, 1)


def test_the_cells_and_the_missing_rates_are_the_documented_ones():
    tops, every = (0, 2, 6), tuple(range(10))
    assert grid.CELLS == {'k3': (tops, 0.0), 'k5': (tops + (4, 3), 0.0), 'k10': (every, 0.0),
                          'k10_rho0.3': (every, 0.3), 'k10_rho0.6': (every, 0.6)}


def test_run_config_probes_every_loss_and_adapts_only_the_adaptive_one(tmp_path):
    hooks = Config.fromfile(grid.write_run_config('asl', str(tmp_path / 'a.py'))).custom_hooks
    assert hooks == [dict(type='ProbabilityGapHook')]
    hooks = Config.fromfile(grid.write_run_config('asl_adaptive', str(tmp_path / 'b.py'))).custom_hooks
    assert hooks == [dict(type='ProbabilityGapHook', adaptive=dict(target=0.1, lam=0.05))]


def test_summarise_reads_the_last_evaluation_and_the_last_gaps():
    scalars = ([{'asl_dp': float(i), 'step': i} for i in range(30)]
               + [{'multi-label/mAP': m, 'multi-label/CF1': 1.0, 'multi-label/OF1': 2.0, 'step': e}
                  for e, m in ((2, 70.0), (1, 60.0))])
    out = grid.summarise(scalars)
    assert out['mAP'] == 70.0 and out['curve'] == [(1, 60.0), (2, 70.0)]
    assert out['dp'] == pytest.approx(sum(range(10, 30)) / 20)


def test_report_only_writes_the_table_of_finished_runs_and_trains_nothing(tmp_path, monkeypatch):
    rows = [dict(row('k10', loss, s, 90.0 + s + (loss == 'asl'), epochs=8), curve=[]) for loss in ('bce', 'asl')
            for s in range(3)]
    (tmp_path / 'results.json').write_text(json.dumps(rows))
    monkeypatch.setattr(grid, 'make_cell', lambda cell, root: None)
    monkeypatch.setattr(grid, 'negatives_per_positive', lambda path: 4.0)

    forbid_training(monkeypatch)
    grid.main(['--report-only', '--cells', 'k10', 'k5', '--out', str(tmp_path)])
    md = (tmp_path / 'results.md').read_text()
    assert '| k10 | asl | 3 | 92.0 ± 1.0 |' in md and '+1.0 ± 0.8 (vs bce)' in md and '| k5 |' not in md
    assert json.loads((tmp_path / 'results.json').read_text()) == rows  # nothing added


def test_missing_label_scores_by_kind_of_pair(tmp_path):
    # image 1: class 1 kept, class 2 removed; image 2: class 3 removed; the other three pairs are negatives
    coco = dict(images=[dict(id=1, file_name='a.png'), dict(id=2, file_name='b.png')],
                annotations=[dict(id=1, image_id=1, category_id=1)], categories=[dict(id=k) for k in (1, 2, 3)])
    record = dict(removed=[dict(image_id=1, category_id=2, annotation_ids=[2]),
                           dict(image_id=2, category_id=3, annotation_ids=[3])])
    (tmp_path / 'train.json').write_text(json.dumps(coco))
    (tmp_path / 'removed.json').write_text(json.dumps(record))
    preds = [dict(img_path='/x/b.png', pred_score=[0.2, 0.5, 0.4]), dict(img_path='/x/a.png',
                                                                          pred_score=[0.9, 0.5, 0.1])]
    out = grid.missing_label_scores(preds, str(tmp_path / 'train.json'), str(tmp_path / 'removed.json'))
    # missing 0.5 (a, 2) and 0.4 (b, 3); negatives 0.1 (a, 3), 0.2 (b, 1), 0.5 (b, 2)
    assert out['p_kept'] == pytest.approx(0.9) and out['p_missing'] == pytest.approx(0.45)
    assert out['p_neg'] == pytest.approx(0.8 / 3)
    # 0.5 beats 0.1 and 0.2 and ties 0.5 (2.5 of 3); 0.4 beats 0.1 and 0.2 (2 of 3)
    assert out['auc_missing'] == pytest.approx(4.5 / 6)


def det_row(cell, loss, seed, ap, epochs=60):
    return dict(cell=cell, loss=loss, seed=seed, epochs=epochs, AP=ap, AP50=ap * 4, dp=-0.3, curve=[])


def test_detection_cells_datasets_and_losses_are_the_documented_ones():
    assert grid.DET_CELLS == {'deepforest': ('deepforest', 0.0), 'deepforest_rho0.3': ('deepforest', 0.3),
                              'fashion10': ('fashion10', 0.0), 'fashion10_rho0.3': ('fashion10', 0.3)}
    assert grid.DET_LOSSES == ('focal', 'asl_m0', 'asl_m005', 'asl_a025') and grid.DET_BASELINES == ('focal', )
    assert {d['epochs'] for d in grid.DET_DATASETS.values()} == {60, 24}


def test_detection_run_options_set_the_cell_data_the_loss_and_only_a_changed_schedule():
    opts = grid.det_run_options('deepforest_rho0.3', 'focal', 1, None, None, data_root='/d')
    assert 'train_dataloader.dataset.data_root=/d/deepforest_rho0.3/' in opts
    assert 'val_evaluator.ann_file=/d/deepforest_rho0.3/annotations/val.json' in opts
    assert {'model.bbox_head.loss_cls.gamma_pos=2.0', 'model.bbox_head.loss_cls.alpha=0.25',
            'randomness.seed=1', 'train_cfg.val_interval=10', 'default_hooks.checkpoint.interval=60',
            'train_dataloader.dataset.filter_cfg.filter_empty_gt=False'} <= set(opts)
    assert not any(o.startswith(('train_cfg.max_epochs', 'param_scheduler')) for o in opts)  # the config's 60
    opts = grid.det_run_options('fashion10', 'asl_m005', 0, 24, 4, data_root='/d')
    assert 'test_evaluator.ann_file=/d/fashion10/annotations/instances_test.json' in opts
    assert {'model.bbox_head.loss_cls.clip=0.05', 'train_cfg.max_epochs=24', 'param_scheduler.1.milestones=[19]',
            'train_cfg.val_interval=4', 'default_hooks.checkpoint.interval=24'} <= set(opts)
    # fashion10's schedule (24 epochs) is not its config's (12): the schedule is set; 12 is the config's own
    opts = grid.det_run_options('fashion10', 'focal', 0, None, None)
    assert {'train_cfg.val_interval=2', 'train_cfg.max_epochs=24', 'param_scheduler.1.milestones=[19]'} <= set(opts)
    assert not any(o.startswith('param_scheduler') for o in grid.det_run_options('fashion10', 'focal', 0, 12, None))


def test_summarise_det_reads_the_last_box_evaluation_in_points():
    scalars = ([{'asl_dp': -0.5, 'step': i} for i in range(5)]
               + [{'coco/bbox_mAP': ap, 'coco/bbox_mAP_50': 0.4, 'step': e} for e, ap in ((20, 0.1), (10, 0.05))])
    out = grid.summarise(scalars, grid.DET_KEYS, 100.0)
    assert out['AP'] == pytest.approx(10.0) and out['AP50'] == pytest.approx(40.0)
    assert out['curve'] == [(10, pytest.approx(5.0)), (20, pytest.approx(10.0))] and out['dp'] == -0.5


def test_detection_report_only_compares_with_focal_loss_at_each_dataset_schedule(tmp_path, monkeypatch):
    rows = ([det_row('deepforest', loss, s, 10.0 + s + (loss == 'asl_m0')) for loss in ('focal', 'asl_m0')
             for s in range(3)]
            + [det_row('fashion10', 'focal', 0, 70.0, epochs=24), det_row('fashion10', 'asl_m0', 0, 60.0, epochs=12)])
    (tmp_path / 'results.json').write_text(json.dumps(rows))
    monkeypatch.setattr(grid, 'make_det_cell', lambda cell, root: None)
    monkeypatch.setattr(grid, 'training_boxes', lambda path: 777)
    counted = []
    monkeypatch.setattr(grid, 'det_negatives_per_positive', lambda cell, root: counted.append(cell) or dict(
        ratio=17.0 if cell == 'deepforest' else 170.0))

    forbid_training(monkeypatch)
    argv = ['--arm', 'detection', '--report-only', '--cells', 'deepforest', 'fashion10', '--out', str(tmp_path),
            '--data-root', str(tmp_path / 'data')]
    grid.main(argv)
    md = (tmp_path / 'results.md').read_text()
    assert '| deepforest | asl_m0 | 3 | 12.0 ± 1.0 | 48.0 ± 4.0 |' in md and '+1.0 ± 0.8 (vs focal)' in md
    # fashion10's schedule is 24 epochs: its 12-epoch row is another schedule and stays out of the table
    assert '| fashion10 | focal | 1 |' in md and '| fashion10 | asl_m0 |' not in md
    assert 'deepforest 777 (60), fashion10 777 (24)' in md
    assert 'negatives per positive (FCOS training targets): deepforest 17, fashion10 170' in md
    assert (tmp_path / 'fig_det_asl_vs_negatives.png').exists()
    # counted once per cell, then read from negatives_per_positive.json
    grid.main(argv)
    assert counted == ['deepforest', 'fashion10']


def test_detection_negatives_per_positive_is_counted_again_when_the_cell_is_regenerated(tmp_path, monkeypatch):
    ann = tmp_path / 'data' / 'fashion10' / 'annotations' / 'instances_train.json'
    ann.parent.mkdir(parents=True)
    ann.write_text('{"annotations": [1]}')
    counted = []
    monkeypatch.setattr(grid, 'det_negatives_per_positive', lambda cell, root: counted.append(cell) or dict(
        ratio=float(len(counted))))
    args = argparse.Namespace(out=str(tmp_path), data_root=str(tmp_path / 'data'), cells=['fashion10'])
    assert grid.det_ratios(args) == {'fashion10': 1.0} and grid.det_ratios(args) == {'fashion10': 1.0}
    ann.write_text('{"annotations": [1, 2]}')  # the same cell written again with other boxes
    assert grid.det_ratios(args) == {'fashion10': 2.0} and counted == ['fashion10', 'fashion10']


def test_a_failed_run_keeps_the_rows_of_the_runs_beside_it(tmp_path):
    def run_one(cell, loss, seed):
        if loss == 'asl':
            raise ValueError('broken config')
        time.sleep(0.05)  # finishes after the failure
        return dict(cell=cell, loss=loss, seed=seed)

    res_file = str(tmp_path / 'results.json')
    with pytest.raises(RuntimeError, match=r"1 of 3 runs failed \(\('k10', 'asl', 0\): ValueError"):
        grid.run_all(run_one, [('k10', 'asl', 0), ('k10', 'bce', 0), ('k10', 'focal', 0)], 3, [], res_file)
    assert sorted(r['loss'] for r in json.loads(open(res_file).read())) == ['bce', 'focal']


def test_each_run_gets_its_share_of_the_cores_in_both_thread_pools(monkeypatch):
    # a caller's OMP_NUM_THREADS=1 alone left MKL at cpu_count // jobs threads, which spun against the other run
    for name in ('MKL_NUM_THREADS', 'MMDET_ASL_COMPILE'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, 'cpu_count', lambda: 4)
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    env = grid.thread_env(1)
    assert env['OMP_NUM_THREADS'] == env['MKL_NUM_THREADS'] == '1'
    monkeypatch.delenv('OMP_NUM_THREADS')
    env = grid.thread_env(2)
    assert env['OMP_NUM_THREADS'] == env['MKL_NUM_THREADS'] == '2' and env['MMDET_ASL_COMPILE'] == '0'


def test_the_worker_threads_read_configs_one_at_a_time(monkeypatch):
    # MMEngine's Config.fromfile is not thread-safe: two grid workers preparing their runs at once failed with a
    # TypeError from pkg_resources now and then, so every config the workers read goes through one lock
    import mmdet_asl.utils.configs as configs
    inside, most = [0], [0]

    def fromfile(path):
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        time.sleep(0.02)
        inside[0] -= 1
        return Config(dict(train_cfg=dict(max_epochs=24), custom_hooks=[]))

    monkeypatch.setattr(configs.Config, 'fromfile', staticmethod(fromfile))
    with ThreadPoolExecutor(4) as pool:
        options = list(pool.map(lambda s: grid.det_run_options('fashion10', 'focal', s, None, None), range(4)))
        hooks = list(pool.map(lambda s: configs.custom_hooks_with('any.py', dict(type='ProbabilityGapHook')), range(4)))
    assert most[0] == 1 and all('train_cfg.val_interval=2' in o for o in options)
    assert hooks == [[dict(type='ProbabilityGapHook')]] * 4


def test_detection_runs_only_what_is_missing_and_refuses_the_other_arms_cells(tmp_path, monkeypatch):
    (tmp_path / 'results.json').write_text(json.dumps([det_row('deepforest', 'focal', 0, 10.0)]))
    monkeypatch.setattr(grid, 'make_det_cell', lambda cell, root: None)
    monkeypatch.setattr(grid, 'training_boxes', lambda path: 1)
    monkeypatch.setattr(grid, 'det_negatives_per_positive', lambda cell, root: dict(ratio=1.0))
    monkeypatch.setattr(grid, 'figures', lambda *a: None)
    ran = []
    monkeypatch.setattr(grid, 'run_one', lambda c, loss, s, args, env: ran.append((c, loss, s)) or det_row(
        c, loss, s, 9.0, epochs=grid.det_epochs(c, args.epochs)))
    grid.main(['--arm', 'detection', '--cells', 'deepforest', 'fashion10', '--losses', 'focal', 'asl_m0',
               '--seeds', '0', '1', '--out', str(tmp_path)])
    assert ran == [('deepforest', 'asl_m0', 0), ('fashion10', 'focal', 0), ('fashion10', 'asl_m0', 0),
                   ('deepforest', 'focal', 1), ('deepforest', 'asl_m0', 1), ('fashion10', 'focal', 1),
                   ('fashion10', 'asl_m0', 1)]
    assert {(r['cell'], r['epochs']) for r in json.loads((tmp_path / 'results.json').read_text())} == {
        ('deepforest', 60), ('fashion10', 24)}
    with pytest.raises(SystemExit):
        grid.main(['--arm', 'detection', '--cells', 'k10', '--out', str(tmp_path)])


def test_curves_table_lists_the_first_seed_of_each_cell_and_loss():
    rows = [dict(det_row('deepforest', 'focal', s, 10.0), curve=[(10, 5.0 + s), (20, 9.0)]) for s in (1, 0)]
    lines = grid.curves_table(rows + [det_row('deepforest', 'asl_m0', 0, 9.0)], ['deepforest'],
                              ['focal', 'asl_m0'], 'AP').splitlines()
    assert lines[2:] == ['| deepforest | focal | 0 | 10: 5.0, 20: 9.0 |']  # asl_m0 has no curve


def test_detection_negatives_per_positive_counts_what_the_head_trains_on(source, tmp_path):  # noqa: F811
    """FCOS on 128 px: 16 x 16 + 8 x 8 + 4 x 4 locations (strides 8, 16, 32), one output per class each; a
    location is a positive of at most one class; each box of the canvases gives some, and the boxes cover far less
    than a quarter of the locations (the background is no positive)."""
    build(source, tmp_path / 'fashion10', '--missing-unit', 'box', num_train=12, num_test=4)
    counts = grid.det_negatives_per_positive('fashion10', str(tmp_path), max_batches=2)
    assert counts['images'] == 8 and counts['outputs'] == 8 * 336 * 10
    boxes = len(json.loads((tmp_path / 'fashion10' / 'annotations' / 'instances_train.json').read_text())[
        'annotations'])
    assert boxes / 12 * 8 / 3 < counts['positives'] < 8 * 336 / 4
    assert counts['ratio'] == pytest.approx((counts['outputs'] - counts['positives']) / counts['positives'])
    ann = tmp_path / 'fashion10' / 'annotations' / 'instances_train.json'
    coco = json.loads(ann.read_text())
    ann.write_text(json.dumps(dict(coco, annotations=[])))
    with pytest.raises(ValueError, match='fashion10: no positive location'):
        grid.det_negatives_per_positive('fashion10', str(tmp_path), max_batches=1)
