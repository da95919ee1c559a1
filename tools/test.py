#!/usr/bin/env python
"""Evaluate a trained detector and print COCO box AP, AP50, AP75, APs, APm, APl (pycocotools via CocoMetric).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl] [--json metrics.json]
        [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}]
"""
import argparse
import json
import math
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import mmdet_asl  # noqa: F401,E402

COCO_KEYS = (('AP', 'bbox_mAP'), ('AP50', 'bbox_mAP_50'), ('AP75', 'bbox_mAP_75'), ('APs', 'bbox_mAP_s'),
             ('APm', 'bbox_mAP_m'), ('APl', 'bbox_mAP_l'))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a detector')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save the evaluation metrics')
    parser.add_argument('--out', help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument('--json', help='also write the COCO box metrics to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def coco_box_metrics(metrics: dict) -> dict:
    """Pick AP, AP50, AP75, APs, APm, APl (in %) out of CocoMetric's ``coco/bbox_*`` keys."""
    out = {}
    for name, key in COCO_KEYS:
        value = metrics.get(f'coco/{key}', metrics.get(key))
        out[name] = float('nan') if value is None else 100.0 * float(value)
    return out


def format_table(box: dict) -> str:
    head = ' | '.join(f'{k:>5}' for k in box)
    # CocoMetric reports -1 (here -100) for an area range without ground truth
    row = ' | '.join('  nan' if math.isnan(v) else '  n/a' if v < 0 else f'{v:5.1f}' for v in box.values())
    return f'COCO box metrics (%):\n| {head} |\n| {row} |'


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    # The backbone's ImageNet init is irrelevant (and may point to a missing file) when loading a detector.
    if cfg.model.get('backbone', {}).get('init_cfg') is not None:
        cfg.model.backbone.init_cfg = None
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if args.out is not None:
        from mmdet.evaluation import DumpDetResults
        assert args.out.endswith(('.pkl', '.pickle')), 'The dump file must be a pkl file.'
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    metrics = runner.test()
    box = coco_box_metrics(metrics)
    print(format_table(box), flush=True)
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(dict(box, raw={k: float(v) for k, v in metrics.items()
                                     if isinstance(v, (int, float))}), f, indent=1)
    return metrics


if __name__ == '__main__':
    main()
