"""tools/analysis_tools/longtail_detection.py: group APs, curves, the final per-class focusing, resume/skip
logic and the configs it trains, each checked against values computed by hand."""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from test_detection_e2e import ROOT, load_tool

tool = load_tool('analysis_tools/longtail_detection')
CLASSES = [('a', 'r', 10), ('b', 'c', 100), ('c', 'f', 1000), ('d', 'f', 2000)]


def test_group_ap_averages_the_per_class_aps_of_each_group():
    metrics = {'coco/a_precision': 0.2, 'coco/b_precision': 0.5, 'coco/c_precision': 0.6,
               'coco/d_precision': 0.8}
    out = tool.group_ap(metrics, CLASSES)
    assert out['APr'] == pytest.approx(20.0)
    assert out['APc'] == pytest.approx(50.0)
    assert out['APf'] == pytest.approx(70.0)  # (60 + 80) / 2
    assert out['AP_classes'] == pytest.approx(52.5)


def test_group_ap_leaves_out_undefined_classes():
    metrics = {'coco/a_precision': -1.0, 'coco/b_precision': 0.5, 'coco/c_precision': -1.0,
               'coco/d_precision': 0.8}
    out = tool.group_ap(metrics, CLASSES)
    assert out['APr'] != out['APr']  # NaN: no defined class in the group
    assert out['APf'] == pytest.approx(80.0)
    assert out['AP_classes'] == pytest.approx(65.0)


def test_val_curve_reads_only_the_evaluations_in_epoch_order():
    scalars = [{'loss': 1.0, 'step': 5}, {'coco/bbox_mAP': 0.4, 'coco/bbox_mAP_50': 0.6, 'step': 4},
               {'asl_dp': -0.2, 'step': 6}, {'coco/bbox_mAP': 0.3, 'coco/bbox_mAP_50': 0.5, 'step': 2}]
    assert tool.val_curve(scalars) == [(2, pytest.approx(30.0), pytest.approx(50.0)),
                                      (4, pytest.approx(40.0), pytest.approx(60.0))]
    assert tool.mean_dp(scalars) == pytest.approx(-0.2)
    assert tool.mean_dp([{'loss': 1.0}]) != tool.mean_dp([{'loss': 1.0}])  # NaN: not probed


def test_read_scalars_joins_every_log_folder(tmp_path):
    for stamp, value in (('20260101_000000', 0.1), ('20260102_000000', 0.2)):
        d = tmp_path / stamp / 'vis_data'
        d.mkdir(parents=True)
        (d / 'scalars.json').write_text(json.dumps({'coco/bbox_mAP': value, 'coco/bbox_mAP_50': value,
                                                    'step': int(value * 10)}) + '\n')
    assert [s['step'] for s in tool.read_scalars(tmp_path)] == [1, 2]


def test_final_gammas_of_efl_follow_the_gradient_ratio(tmp_path):
    pos = torch.tensor([1.0, 3.0, 0.0, 5.0], dtype=torch.float64)
    neg = torch.tensor([4.0, 3.0, 2.0, 1.0], dtype=torch.float64)
    ckpt = tmp_path / 'epoch_1.pth'
    torch.save({'state_dict': {'bbox_head.loss_cls.pos_grad': pos, 'bbox_head.loss_cls.neg_grad': neg}}, ckpt)
    # gamma_j = 2 + 8 * (1 - clamp(pos / neg, 0, 1)): ratios 0.25, 1, 0, 1 (5 / 1 clamped)
    assert tool.final_gammas(str(tmp_path), 'efl', str(ckpt)) == pytest.approx([8.0, 2.0, 10.0, 2.0], abs=1e-9)


def test_final_gammas_of_per_class_asl_are_the_last_logged_line(tmp_path):
    log = tmp_path / '20260101_000000'
    log.mkdir()
    lines = [dict(iter=360, gamma_neg=[2.0, 2.5]), dict(iter=720, gamma_neg=[2.1, 3.0])]
    (log / 'probability_gap_per_class.jsonl').write_text(''.join(json.dumps(x) + '\n' for x in lines))
    assert tool.final_gammas(str(tmp_path), 'asl_perclass', None) == [2.1, 3.0]
    assert tool.final_gammas(str(tmp_path), 'asl', None) is None
    assert tool.final_gammas(str(tmp_path / 'missing'), 'asl_perclass', None) is None


def test_pending_skips_finished_cells_of_the_same_schedule_only():
    results = [dict(variant='focal', seed=0, epochs=12), dict(variant='efl', seed=0, epochs=6)]
    todo = tool.pending(results, ['focal', 'efl'], [0, 1], 12)
    assert todo == [('efl', 0), ('focal', 1), ('efl', 1)]  # seed-major: a partial grid stays balanced
    assert tool.pending(results, ['focal'], [0], 12, force=True) == [('focal', 0)]


def test_table_gives_mean_and_sample_std_over_seeds():
    rows = [dict(variant='asl', seed=s, AP=ap, AP50=50.0, APr=r, APc=1.0, APf=2.0, dp=dp)
            for s, ap, r, dp in ((0, 10.0, 4.0, -0.1), (1, 14.0, 6.0, -0.3))]
    md = tool.table(rows, ['focal', 'asl'])
    line = md.splitlines()[2]
    # mean 12, sample std sqrt(((10-12)^2 + (14-12)^2) / 1) = 2.8
    assert line.startswith('| asl | 2 | 12.0 ± 2.8 | 50.0 ± 0.0 | 5.0 ± 1.4 |')
    assert line.endswith('| -0.200 | 10.0, 14.0 | 4.0, 6.0 |')
    assert len(md.splitlines()) == 3  # focal has no rows: no line


def test_schedule_options_drop_the_rate_at_80_percent():
    opts = tool.schedule_options(12, 2)
    assert 'param_scheduler.1.milestones=[10]' in opts and 'train_cfg.val_interval=2' in opts
    assert 'train_cfg.max_epochs=12' in opts and 'default_hooks.checkpoint.interval=12' in opts


def test_run_config_keeps_the_config_hooks_and_sets_the_variant_probe(tmp_path):
    path = tool.write_run_config('asl_adaptive', str(tmp_path / 'x.py'))
    hooks = Config.fromfile(path).custom_hooks
    assert [h['type'] for h in hooks] == ['ChannelsLastHook', 'ProbabilityGapHook']
    assert hooks[1]['adaptive'] == dict(target=0.0, lam=0.01, warmup_iters=tool.ITERS_PER_EPOCH)
    per_class = Config.fromfile(tool.write_run_config('asl_perclass', str(tmp_path / 'y.py'))).custom_hooks
    assert [h['type'] for h in per_class] == ['ChannelsLastHook', 'ProbabilityGapHook']
    assert per_class[1]['adaptive']['per_class'] is True
    efl = Config.fromfile(tool.write_run_config('efl', str(tmp_path / 'z.py')))
    assert [h['type'] for h in efl.custom_hooks] == ['ChannelsLastHook']  # EFL is not probed
    assert efl.model.bbox_head.loss_cls.type == 'EqualizedFocalLoss'


def test_longtail_configs_match_the_converter_classes_and_iterations():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'make_fashion_canvases', osp.join(ROOT, 'tools', 'dataset_converters', 'make_fashion_canvases.py'))
    canvases = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(canvases)
    cfg = Config.fromfile(osp.join(ROOT, tool.FOCAL_CFG))
    # CocoDataset maps the file's categories to labels by name, in the order of metainfo's classes
    assert tuple(cfg.metainfo.classes) == canvases.CLASSES
    assert cfg.model.bbox_head.num_classes == len(canvases.CLASSES)
    efl = Config.fromfile(osp.join(ROOT, tool.EFL_CFG)).model.bbox_head.loss_cls
    assert efl.num_classes == len(canvases.CLASSES)
    # the adaptive warm-up is one epoch of the default data: ceil(1438 / batch 4)
    assert tool.ITERS_PER_EPOCH == -(-1438 // cfg.train_dataloader.batch_size)
