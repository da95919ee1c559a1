#!/usr/bin/env python
"""Evaluate a trained model: COCO box AP, AP50, AP75, APs, APm, APl for detection configs (CocoMetric), the
multi-label metrics (mAP macro and micro, CP, CR, CF1, OP, OR, OF1, top-3) for MMPretrain multi-label configs
(ASLMultiLabelMetric), or every metric the config's evaluator returns for other configs.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl] [--json metrics.json]
        [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}]

The --json and --out paths, then the test data and the checkpoint are checked before the model is built; all
missing files are reported at once. The JSON is strict: an undefined metric (CocoMetric's -1 for an area range
without ground truth, a NaN) is ``null``. When the evaluator returns no metric at all (CocoMetric does so when
the model predicts no box on any test image) the tool fails instead of writing an empty file.
"""
import argparse
import math
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import mmdet_asl  # noqa: F401,E402
from mmdet_asl.utils import MissingFilesError, check_config_files  # noqa: E402
from mmdet_asl.utils.distributed import setup_cpu_distributed  # noqa: E402
from mmdet_asl.utils.strict_json import dump_json  # noqa: E402

MULTILABEL_KEYS = ('mAP', 'mAP_micro', 'CP', 'CR', 'CF1', 'OP', 'OR', 'OF1')
COCO_KEYS = (('AP', 'bbox_mAP'), ('AP50', 'bbox_mAP_50'), ('AP75', 'bbox_mAP_75'), ('APs', 'bbox_mAP_s'),
             ('APm', 'bbox_mAP_m'), ('APl', 'bbox_mAP_l'))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a detector or a multi-label classifier')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save the evaluation metrics')
    parser.add_argument('--out', help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument('--json', help='also write the metrics to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value')
    parser.add_argument('--tta', action='store_true',
                        help='test-time augmentation: the config\'s tta_model and tta_pipeline (as in MMDetection)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def coco_box_metrics(metrics: dict) -> dict:
    """Pick AP, AP50, AP75, APs, APm, APl (in %) out of CocoMetric's ``coco/bbox_*`` keys.

    A metric that is missing, or that CocoMetric reports as -1 (an area range without ground truth), is None
    (``null`` in the JSON), so that no reader averages it as a number.
    """
    out = {}
    for name, key in COCO_KEYS:
        value = defined(metrics.get(f'coco/{key}', metrics.get(key)), f'coco/{key}')
        out[name] = None if value is None else 100.0 * value
    return out


def multilabel_metrics(metrics: dict) -> dict:
    """The ``multi-label/*`` values of ASLMultiLabelMetric (%), threshold and top-3 rows."""
    rows = {}
    for suffix, row in (('', 'thr'), ('_top3', 'top-3')):
        values = {k: metrics.get(f'multi-label/{k}{suffix}') for k in MULTILABEL_KEYS}
        if any(v is not None for v in values.values()):
            rows[row] = {k: defined(v) for k, v in values.items()}
    return rows


def defined(value, key=''):
    """``value`` as a float, or None where it is undefined: missing, NaN/inf, or CocoMetric's -1 sentinel."""
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value) or (value < 0 and ('coco/' in key or key.startswith('bbox_'))):
        return None
    return value


def format_multilabel_table(rows: dict) -> str:
    head = ' | '.join(f'{k:>9}' for k in MULTILABEL_KEYS)
    lines = [f'| {"":>5} | {head} |']
    for name, values in rows.items():
        cells = ' | '.join(f'{"":>9}' if v is None else f'{v:9.2f}' for v in values.values())
        lines.append(f'| {name:>5} | {cells} |')
    return 'Multi-label metrics (%; mAP = macro average):\n' + '\n'.join(lines)


def format_other_table(numbers: dict) -> str:
    return 'Metrics:\n' + '\n'.join(f'  {k}: {"n/a" if v is None else f"{v:.4f}"}' for k, v in numbers.items())


def is_detection(metrics: dict) -> bool:
    return any(k.startswith('coco/') or k.startswith('bbox_') for k in metrics)


def format_table(box: dict) -> str:
    head = ' | '.join(f'{k:>5}' for k in box)
    row = ' | '.join('  n/a' if v is None else f'{v:5.1f}' for v in box.values())
    return f'COCO box metrics (%):\n| {head} |\n| {row} |'


def check_output_path(option: str, path: str, suffixes=()) -> None:
    """Fail before the (long) evaluation when ``path`` cannot be written: a folder, a wrong suffix, a parent
    that is not a writable folder. A missing parent folder is created."""
    if suffixes and not path.endswith(suffixes):
        raise ValueError(f'{option} {path}: the file name must end with {" or ".join(suffixes)}')
    if osp.isdir(path):
        raise ValueError(f'{option} {path} is a folder; give a file name inside it')
    parent = osp.dirname(osp.abspath(path))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise ValueError(f'{option} {path}: cannot create its folder {parent} ({exc.strerror})') from None
    if not os.access(parent, os.W_OK) or (osp.exists(path) and not os.access(path, os.W_OK)):
        raise ValueError(f'{option} {path}: not writable')


def metrics_record(metrics: dict):
    """(table, JSON record) of the evaluator's ``metrics``: the COCO box or multi-label table (the printed
    one) and the same values plus ``raw`` (every numeric metric), undefined values as None."""
    numbers = {k: defined(v, k) for k, v in metrics.items() if isinstance(v, (int, float))}
    rows = multilabel_metrics(metrics)
    if is_detection(metrics):
        table = coco_box_metrics(metrics)
    elif rows:
        table = {f'{k}{"" if row == "thr" else "_top3"}': v for row, values in rows.items()
                 for k, v in values.items()}
    else:
        table = numbers
    return table, dict(table, raw=numbers)


def check_some_defined(record: dict, config: str, checkpoint: str, json_path=None) -> None:
    """Fail when the evaluator returned no defined metric at all (nothing would be worth writing)."""
    if any(v is not None for v in record['raw'].values()):
        return
    raise RuntimeError(
        f'{config}: the evaluator returned no metric value for {checkpoint} (CocoMetric returns none when the '
        'model predicts no box on any test image: check the checkpoint and model.test_cfg.score_thr); '
        + (f'{json_path} was not written' if json_path else 'nothing to report'))


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.json:
            check_output_path('--json', args.json)
        if args.out:
            check_output_path('--out', args.out, ('.pkl', '.pickle'))
    except ValueError as exc:
        if argv is not None:
            raise
        sys.exit(str(exc))
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    # The backbone's ImageNet init is irrelevant (and may point to a missing file) when loading a checkpoint.
    if cfg.model.get('backbone', {}).get('init_cfg') is not None:
        cfg.model.backbone.init_cfg = None
    if args.tta:
        if not cfg.get('tta_model') or not cfg.get('tta_pipeline'):
            sys.exit(f'{args.config}: --tta needs tta_model and tta_pipeline in the config')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    try:
        check_config_files(cfg, loaders=('test', ))
    except MissingFilesError as exc:
        if argv is not None:
            raise
        sys.exit(f'{args.config}: {exc}')
    setup_cpu_distributed(cfg)  # --launcher pytorch/slurm without CUDA: gloo, CPU DDP
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if args.out is not None:
        if cfg.get('default_scope') == 'mmdet':
            from mmdet.evaluation import DumpDetResults as Dump
        else:
            from mmengine.evaluator import DumpResults as Dump
        runner.test_evaluator.metrics.append(Dump(out_file_path=args.out))
    metrics = runner.test()
    table, record = metrics_record(metrics)
    try:
        check_some_defined(record, args.config, args.checkpoint, args.json)
    except RuntimeError as exc:
        if argv is not None:
            raise
        sys.exit(str(exc))
    if is_detection(metrics):
        print(format_table(table), flush=True)
    elif multilabel_metrics(metrics):
        print(format_multilabel_table(multilabel_metrics(metrics)), flush=True)
    else:
        print(format_other_table(table), flush=True)
    if args.json:
        dump_json(record, args.json, indent=1)
    return metrics


if __name__ == '__main__':
    main()
