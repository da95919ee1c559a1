#!/usr/bin/env python
"""When does ASL help? A grid of loss x data cell x seed, multi-label classification and detection, pretrained.

Multi-label arm (the default, ``--arm multilabel``). Each cell is a Fashion-MNIST canvas set made by
``tools/dataset_converters/make_fashion_canvases.py`` at the pretrained recipe's size (128 px, items at twice the
default scale; 1536 train and 1000 test canvases, two items per canvas) with ``K`` classes (``--classes``:
negatives per positive) and a fraction ``rho`` of the training labels removed (``--missing-rate``; the test labels
stay complete). The same seed draws the same canvases whatever ``rho``, so the cells of the missing-label axis
differ only in the removed labels. Cells:

    k3             K = 3: the tops T-shirt/top, Pullover, Shirt (negatives per positive about 0.8)
    k5             K = 5: the tops, Coat and Dress (about 1.8)
    k10            K = 10: every class (about 4.3)
    k10_rho0.3     k10 with 30 % of the training labels missing
    k10_rho0.6     k10 with 60 % missing

The small-K cells hold the classes Fashion-MNIST confuses most, nested (k3 in k5 in k10): the first three
classes (T-shirt/top, Trouser, Pullover) are nearly separable and leave no room for a loss to differ. Fewer
negatives per positive therefore also means harder classes on average; the comparison is between losses
within a cell.

Each (cell, loss, seed) fine-tunes ``configs/multilabel/effnet-lite0_asl_1xb32_fashion-canvas-128px.py`` (ImageNet
EfficientNet-Lite0, AdamW + 1-cycle) with ``tools/train.py``, the loss given below, the cell's class count, the
training canvases whose labels were all removed kept as all-negative samples (``drop_empty=False``), and
``ProbabilityGapHook`` (Delta p, Eq. 9-10, logged every iteration; adaptive for ``asl_adaptive``); every loss
is an ``AsymmetricLoss``, so the probe reads each. Losses:

    bce            gamma+ 0, gamma- 0, m 0 (binary cross-entropy)
    focal          gamma+ = gamma- = 2, m 0
    asl            gamma+ 0, gamma- 4, m 0.05 (the paper's multi-label setting)
    asl_adaptive   asl with gamma- adapted towards Delta p = 0.1 (lam 0.05)
    asl_m02        gamma+ 0, gamma- 4, m 0.2: a margin that discards more of the confident negatives, the
                   paper's mechanism against missing positives (Sec. 3.2), fixed before any result

Every run evaluates on the cell's complete test split every ``--val-interval`` epochs (the curves); the table
reads the last evaluation: mAP (macro), CF1 and OF1 at threshold 0.5, and Delta p over the last 20 iterations.

    python tools/analysis_tools/asl_grid.py --cells k3 k10 --losses bce focal asl --seeds 0 1 2 --jobs 2
    python tools/analysis_tools/asl_grid.py --cells k10 k10_rho0.6 --losses bce focal asl --seeds 0 \\
        --val-interval 1 --out work_dirs/asl_grid_curves   # the schedule check: one seed, every epoch

Runs are rows of ``<out>/results.json`` (a rerun skips the finished ones), each with the
SHA-256 of the full config MMEngine dumped into its folder and the load average before and after. Written to
``<out>``: ``results.md`` (mean +- sample std, per-seed values, and ASL's difference to the better of BCE and
focal loss with the standard error of that difference), ``fig_asl_vs_negatives.png`` and
``fig_asl_vs_missing.png`` (that difference against negatives per positive, and against rho).
``--score-missing`` has the final checkpoints of the missing-label cells score their own training canvases
(``missing_scores.json``, a second table: how far each loss fitted the removed labels as negatives);
``--report-only`` writes the outputs from the finished runs without training.

Detection arm (``--arm detection``): the demo recipe, FCOS + ImageNet EfficientNet-Lite0, with a fraction
``rho`` of the training boxes removed (the val/test boxes stay complete; an image left without boxes is trained
on as background). Cells:

    deepforest          the DeepForest tiles (``prepare_deepforest.py``, one class) in the demo config as it is
                        (configs/demo/fcos_effnet-lite0_asl_deepforest.py, 60 epochs)
    deepforest_rho0.3   with 30 % of the training boxes removed (``--missing-rate 0.3``, seed 0)
    fashion10           balanced Fashion-MNIST detection canvases (10 classes, 1-4 items at 64 px; 1440 train,
                        400 test) in the recipe adapted once to 10 classes and small canvases
                        (configs/demo/fcos_effnet-lite0_asl_fashion-longtail.py: 128 px input), trained 24
                        epochs (x0.1 at 19) instead of the config's 12, which decay while AP still rises
    fashion10_rho0.3    with 30 % of the training boxes removed (``--missing-rate 0.3 --missing-unit box``)

Losses (``detection_seeds.py``'s variants, each an ``AsymmetricLoss`` so that the probe reads Delta p):
``focal`` (gamma+ = gamma- = 2, alpha 0.25: FocalLoss's values), ``asl_m0`` (gamma+ 1, gamma- 2, m 0: the
paper's detection setting), ``asl_m005`` (m 0.05), ``asl_a025`` (m 0, alpha 0.25). The table reads the last
evaluation (box AP, AP50) and compares each ASL loss with focal loss; ``fig_det_asl_vs_missing_<dataset>.png``
draws that difference against rho and ``fig_det_asl_vs_negatives.png`` against each complete cell's negatives per
positive, counted once as FCOS trains them (``negatives_per_positive.json``). Results go to
``work_dirs/asl_grid_det`` unless ``--out`` says otherwise.

    python tools/analysis_tools/asl_grid.py --arm detection --cells deepforest deepforest_rho0.3 --jobs 2
"""
import argparse
import math
import os
import os.path as osp
import statistics
import subprocess
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import detection_seeds  # noqa: E402
from training_runs import ROOT, file_sha256, read_scalars, run_all, thread_env, train  # noqa: E402

from mmdet_asl.utils.strict_json import dump_json, dumps_json, load_json  # noqa: E402

sys.path.insert(0, osp.join(ROOT, 'tools', 'dataset_converters'))
from missing_labels import REMOVED_FILE  # noqa: E402

CONFIG = 'configs/multilabel/effnet-lite0_asl_1xb32_fashion-canvas-128px.py'
DATA_ROOT = 'data/asl_grid'
# the pretrained recipe's canvases (make_fashion_canvases.py --size 128 --scale-range 1.2 2.2), two items each
CANVAS_ARGS = ['--size', '128', '--scale-range', '1.2', '2.2', '--num-train', '1536', '--num-test', '1000',
               '--min-items', '2', '--max-items', '2', '--seed', '0']
TOPS = (0, 2, 6)  # T-shirt/top, Pullover, Shirt (indices into make_fashion_canvases.CLASSES)
ALL = tuple(range(10))
CELLS = {  # name -> (classes, rho missing)
    'k3': (TOPS, 0.0), 'k5': (TOPS + (4, 3), 0.0), 'k10': (ALL, 0.0), 'k10_rho0.3': (ALL, 0.3),
    'k10_rho0.6': (ALL, 0.6),
}
ASL = dict(gamma_pos=0.0, gamma_neg=4.0, clip=0.05)
LOSSES = {  # name -> (AsymmetricLoss arguments, ProbabilityGapHook adaptive settings or None)
    'bce': (dict(gamma_pos=0.0, gamma_neg=0.0, clip=0.0), None),
    'focal': (dict(gamma_pos=2.0, gamma_neg=2.0, clip=0.0), None),
    'asl': (ASL, None),
    'asl_adaptive': (ASL, dict(target=0.1, lam=0.05)),
    'asl_m02': (dict(ASL, clip=0.2), None),
}
BASELINES = ('bce', 'focal')
METRICS = ('mAP', 'CF1', 'OF1')
ML_KEYS = {m: f'multi-label/{m}' for m in METRICS}  # metric -> its name in scalars.json

# The detection arm: the demo recipe (FCOS + ImageNet EfficientNet-Lite0) on two datasets, with a fraction rho of
# the training boxes removed (seed 0; the val/test annotations stay complete). Per dataset: the ASL config every
# loss is set in, the converter's arguments, the COCO files, the schedule (the config's own when ``epochs`` is its
# max_epochs, else detection_seeds.py's x0.1 at 80 %) and the evaluation interval.
DET_DATA_ROOT = 'data/asl_grid_det'
DET_DATASETS = {
    # the DeepForest tiles (one class) and the demo config as it is
    'deepforest': dict(config='configs/demo/fcos_effnet-lite0_asl_deepforest.py',
                       convert=['tools/dataset_converters/prepare_deepforest.py', '--seed', '0'],
                       train_ann='train.json', val_ann='val.json', epochs=60, val_interval=10),
    # balanced canvases of the 10 classes (1-4 items at 64 px, the long-tailed set's size and items), in the
    # demo recipe adapted once to 10 classes and small canvases (fcos_effnet-lite0_*_fashion-longtail.py:
    # 128 px input, horizontal flips), which is trained here on these canvases instead; its 12 epochs (x0.1 at
    # 10) decay while AP still rises; with 24 (x0.1 at 19) AP moves by at most 1 point over the last 4 (seed 0)
    'fashion10': dict(config='configs/demo/fcos_effnet-lite0_asl_fashion-longtail.py',
                      convert=['tools/dataset_converters/make_fashion_canvases.py', '--num-train', '1440',
                               '--num-test', '400', '--seed', '0', '--missing-unit', 'box'],
                      train_ann='instances_train.json', val_ann='instances_test.json', epochs=24,
                      val_interval=2),
}
DET_CELLS = {  # name -> (dataset, rho missing)
    'deepforest': ('deepforest', 0.0), 'deepforest_rho0.3': ('deepforest', 0.3),
    'fashion10': ('fashion10', 0.0), 'fashion10_rho0.3': ('fashion10', 0.3),
}
# detection_seeds.py's variants, each set as an AsymmetricLoss in the dataset's ASL config (focal: gamma+ =
# gamma- = 2, alpha 0.25, which gives FocalLoss's values), so that the probe reads Delta p of each
DET_LOSSES = ('focal', 'asl_m0', 'asl_m005', 'asl_a025')
DET_BASELINES = ('focal', )
DET_METRICS = ('AP', 'AP50')
DET_KEYS = {'AP': 'coco/bbox_mAP', 'AP50': 'coco/bbox_mAP_50'}  # fractions in scalars.json, points in the table


def cell_dir(cell, data_root=DATA_ROOT):
    return osp.join(data_root, cell)


def make_cell(cell, data_root=DATA_ROOT):
    """Write the cell's canvases (a no-op when they exist with the same arguments)."""
    classes, rho = CELLS[cell]
    subprocess.check_call([sys.executable, 'tools/dataset_converters/make_fashion_canvases.py', *CANVAS_ARGS,
                           '--classes', *map(str, classes), '--missing-rate', str(rho),
                           '--out', cell_dir(cell, data_root)],
                          cwd=ROOT, stdout=subprocess.DEVNULL)


def negatives_per_positive(ann_file):
    """(K * images - positives) / positives of a COCO file, a positive being an (image, category) pair."""
    coco = load_json(ann_file)
    positives = len({(a['image_id'], a['category_id']) for a in coco['annotations']})
    total = len(coco['images']) * len(coco['categories'])
    return (total - positives) / positives


def run_options(cell, loss, seed, epochs, val_interval, data_root=DATA_ROOT):
    k = len(CELLS[cell][0])
    args, _ = LOSSES[loss]
    root = cell_dir(cell, data_root) + '/'
    return ([f'randomness.seed={seed}', f'train_dataloader.dataset.data_root={root}',
             f'val_dataloader.dataset.data_root={root}', f'test_dataloader.dataset.data_root={root}',
             'train_dataloader.dataset.indices=None', 'val_dataloader.dataset.indices=None',
             'test_dataloader.dataset.indices=None',
             # a canvas whose labels were all removed is a sample with every label negative, as in real data
             'train_dataloader.dataset.drop_empty=False',
             f'data_preprocessor.num_classes={k}', f'model.head.num_classes={k}',
             f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={val_interval}',
             f'default_hooks.checkpoint.interval={epochs}']
            + [f'model.head.loss.{key}={value}' for key, value in args.items()])


def write_run_config(loss, path):
    """The run's config: CONFIG with its ProbabilityGapHook (probe, or adaptive) beside its other hooks."""
    from mmdet_asl.utils.configs import write_config_with_hook
    _, adaptive = LOSSES[loss]
    hook = dict(type='ProbabilityGapHook') if adaptive is None else dict(type='ProbabilityGapHook',
                                                                         adaptive=adaptive)
    return write_config_with_hook(path, osp.join(ROOT, CONFIG), hook)


def summarise(scalars, keys=ML_KEYS, scale=1.0, last=20):
    """Final metrics (the last evaluation, times ``scale``), the curve [(epoch, first metric)] and Delta p of the
    last iterations. ``keys`` maps each metric to its scalar's name (the first one draws the curve)."""
    first = next(iter(keys.values()))
    evals = sorted((s for s in scalars if first in s), key=lambda s: s['step'])
    dps = [s['asl_dp'] for s in scalars if 'asl_dp' in s]
    out = {m: scale * evals[-1][key] for m, key in keys.items()}
    out['curve'] = [(s['step'], scale * s[first]) for s in evals]
    out['dp'] = statistics.mean(dps[-last:]) if dps else float('nan')
    return out


def run_name(row):
    return f"{row['cell']}_{row['loss']}_seed{row['seed']}"


def run_one(cell, loss, seed, args, env):
    """Train one (cell, loss, seed) of either arm; its row of results.json."""
    name = run_name(dict(cell=cell, loss=loss, seed=seed))
    work_dir = osp.join(args.out, name)
    os.makedirs(osp.join(args.out, 'run_configs'), exist_ok=True)
    config_path = osp.join(args.out, 'run_configs', name + '.py')
    if cell in DET_CELLS:
        config = detection_seeds.write_probed_config(osp.join(ROOT, det_dataset(cell)['config']), config_path)
        options = det_run_options(cell, loss, seed, args.epochs, args.val_interval, args.data_root)
        epochs, keys, scale = det_epochs(cell, args.epochs), DET_KEYS, 100.0
    else:
        config = write_run_config(loss, config_path)
        options = run_options(cell, loss, seed, args.epochs, args.val_interval, args.data_root)
        epochs, keys, scale = args.epochs, ML_KEYS, 1.0
    run = train(config, work_dir, options, osp.join(args.out, name + '.log'), env)
    return dict(cell=cell, loss=loss, seed=seed, epochs=epochs, **summarise(read_scalars(work_dir), keys, scale),
                **run)


def make_det_cell(cell, data_root=DET_DATA_ROOT):
    """Write the cell's images and COCO files with its fraction of the training boxes removed."""
    rho = DET_CELLS[cell][1]
    subprocess.check_call([sys.executable, *det_dataset(cell)['convert'], '--missing-rate', str(rho), '--out',
                           cell_dir(cell, data_root)], cwd=ROOT, stdout=subprocess.DEVNULL)


def det_negatives_per_positive(cell, data_root=DET_DATA_ROOT, max_batches=None):
    """Negatives per positive of a detection cell as its head is trained on them.

    One pass over the training images through the cell's model and its target assignment (no gradient, no
    training), counting the outputs the classification loss receives: FCOS scores every location of every level
    with one sigmoid output per class, and a location assigned to a box is a positive of that box's class only.

    Returns:
        dict: ``positives`` and ``outputs`` (all classification outputs), ``images`` and ``ratio`` =
        (outputs - positives) / positives.
    """
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from mmdet.registry import MODELS

    import mmdet_asl  # noqa: F401  (registers AsymmetricLoss)
    cfg = Config.fromfile(osp.join(ROOT, det_dataset(cell)['config']))
    cfg.merge_from_dict({'train_dataloader.dataset.data_root': cell_dir(cell, data_root) + '/',
                         'train_dataloader.dataset.filter_cfg.filter_empty_gt': False,
                         'train_dataloader.num_workers': 0, 'train_dataloader.persistent_workers': False})
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model).train()
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    head, counts = model.bbox_head, dict(positives=0, outputs=0, images=0)
    forward = head.loss_cls.forward

    def counting(pred, target, *args, **kwargs):
        counts['positives'] += int(((target >= 0) & (target < head.num_classes)).sum())
        counts['outputs'] += pred.numel()
        return forward(pred, target, *args, **kwargs)

    head.loss_cls.forward = counting
    with torch.no_grad():
        for i, batch in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            data = model.data_preprocessor(batch, True)
            model.loss(data['inputs'], data['data_samples'])
            counts['images'] += len(data['data_samples'])
    if not counts['positives']:
        raise ValueError(f'{cell}: no positive location in the training images under {cell_dir(cell, data_root)} '
                         '(no boxes, or none the head assigns): negatives per positive is undefined')
    return dict(counts, ratio=(counts['outputs'] - counts['positives']) / counts['positives'])


def det_dataset(cell):
    """The settings of a detection cell's dataset (``DET_DATASETS``)."""
    return DET_DATASETS[DET_CELLS[cell][0]]


def det_ann_file(cell, data_root, split):
    """The COCO file of a detection cell's ``split`` ('train' or 'val')."""
    return osp.join(cell_dir(cell, data_root), 'annotations', det_dataset(cell)[f'{split}_ann'])


def det_epochs(cell, epochs=None):
    """The schedule of a detection cell: ``epochs`` when given, else its dataset's."""
    return epochs or det_dataset(cell)['epochs']


def training_boxes(ann_file):
    """The boxes a detector is trained on: the non-crowd annotations of a COCO file."""
    return sum(not a.get('iscrowd', 0) for a in load_json(ann_file)['annotations'])


def det_run_options(cell, loss, seed, epochs, val_interval, data_root=DET_DATA_ROOT):
    dataset = det_dataset(cell)
    root = cell_dir(cell, data_root) + '/'
    val_ann = det_ann_file(cell, data_root, 'val')
    epochs = det_epochs(cell, epochs)
    # the config's own schedule, or detection_seeds.py's shortened/lengthened one (x0.1 at 80 %)
    from mmdet_asl.utils.configs import load_config  # called in the grid's worker threads
    own = load_config(osp.join(ROOT, dataset['config'])).train_cfg.max_epochs
    schedule = [] if epochs == own else detection_seeds.schedule_options(epochs)
    return ([f'randomness.seed={seed}', f'train_dataloader.dataset.data_root={root}',
             f'val_dataloader.dataset.data_root={root}', f'test_dataloader.dataset.data_root={root}',
             f'val_evaluator.ann_file={val_ann}', f'test_evaluator.ann_file={val_ann}',
             # an image whose boxes were all removed is trained on as background, as in real data
             'train_dataloader.dataset.filter_cfg.filter_empty_gt=False',
             *detection_seeds.VARIANTS[loss][1], *schedule,
             f'train_cfg.val_interval={val_interval or dataset["val_interval"]}',
             f'default_hooks.checkpoint.interval={epochs}'])


def pending(results, cells, losses, seeds, epochs):
    """The (cell, loss, seed) runs not in ``results`` for this schedule; seed-major, so that a partial grid
    has every cell and loss at its first seeds."""
    done = {(r['cell'], r['loss'], r['seed']) for r in results if r['epochs'] == epochs}
    return [(c, loss, s) for s in seeds for c in cells for loss in losses if (c, loss, s) not in done]


def missing_label_scores(predictions, ann_file, removed_file):
    """How a trained model scores its own training canvases, by kind of (image, class) pair.

    Args:
        predictions (list[dict]): ``tools/test.py --out`` results on the training canvases (``img_path`` and
            ``pred_score`` per image; score k is category id k + 1).
        ann_file (str): the training annotations the model was trained with (the kept positives).
        removed_file (str): the converter's record of the removed labels (the missing positives).

    Returns:
        dict: mean score of the kept positives (``p_kept``), of the missing positives (``p_missing``) and of the
        true negatives (``p_neg``), and ``auc_missing``: the probability that a missing positive scores above a
        true negative (ties count one half), i.e. whether the model still ranks the labels it was told were
        negative above the real negatives.
    """
    import numpy as np
    coco = load_json(ann_file)
    ids = {im['file_name']: im['id'] for im in coco['images']}
    kept = {(a['image_id'], a['category_id']) for a in coco['annotations']}
    missing = {(r['image_id'], r['category_id']) for r in load_json(removed_file)['removed']}
    groups = {'kept': [], 'missing': [], 'neg': []}
    for pred in predictions:
        image_id = ids[osp.basename(pred['img_path'])]
        for k, score in enumerate(np.asarray(pred['pred_score'], dtype=np.float64)):
            pair = (image_id, k + 1)
            groups['kept' if pair in kept else 'missing' if pair in missing else 'neg'].append(score)
    miss, neg = np.sort(groups['missing']), np.sort(groups['neg'])
    # Mann-Whitney: for each missing score, the negatives below it plus half the ties
    lower, upper = np.searchsorted(neg, miss, side='left'), np.searchsorted(neg, miss, side='right')
    below = lower + 0.5 * (upper - lower)
    return dict(p_kept=float(np.mean(groups['kept'])), p_missing=float(np.mean(miss)),
                p_neg=float(np.mean(neg)), auc_missing=float(below.sum() / (len(miss) * len(neg))))


def score_missing(row, args, env):
    """``missing_label_scores`` of a finished run of a cell with missing labels (its final checkpoint)."""
    from mmdet_asl.compat import load_pickle_safely
    name = run_name(row)
    work_dir = osp.join(args.out, name)
    out = osp.join(work_dir, 'train_scores.pkl')
    root = cell_dir(row['cell'], args.data_root)
    if not osp.isfile(out):
        with open(osp.join(args.out, name + '_scores.log'), 'w') as log:
            subprocess.check_call(
                [sys.executable, 'tools/test.py', osp.join(work_dir, name + '.py'),
                 osp.join(work_dir, f"epoch_{row['epochs']}.pth"), '--work-dir', osp.join(work_dir, 'train_scores'),
                 '--out', out, '--cfg-options', 'test_dataloader.dataset.ann_file=annotations/instances_train.json',
                 'test_dataloader.dataset.data_prefix=train', 'test_dataloader.dataset.drop_empty=False'],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    # a pickle can name any code to run: only containers, numbers, strings, numpy arrays and tensors are read
    predictions = load_pickle_safely(out)
    return missing_label_scores(predictions, osp.join(root, 'annotations', 'instances_train.json'),
                                osp.join(root, 'annotations', REMOVED_FILE))


def stats(values):
    values = [v for v in values if v == v]
    mean = statistics.mean(values) if values else float('nan')
    sd = statistics.stdev(values) if len(values) > 1 else float('nan')
    return mean, sd, len(values)


def difference_to_best_baseline(results, cell, loss, metric='mAP', baselines=BASELINES):
    """(difference, standard error, baseline name): ``loss``'s mean minus the mean of the best of ``baselines``
    (BCE and focal loss) in ``cell``; the standard error of a difference of two means,
    sqrt(sd_a^2 / n_a + sd_b^2 / n_b)."""
    def of(name):
        return stats([r[metric] for r in results if r['cell'] == cell and r['loss'] == name])
    measured = [(of(b), b) for b in baselines if of(b)[2]]
    if not measured or not of(loss)[2]:
        return float('nan'), float('nan'), None
    (b_mean, b_sd, b_n), best = max(measured, key=lambda x: x[0][0])
    a_mean, a_sd, a_n = of(loss)
    se = math.sqrt(a_sd ** 2 / a_n + b_sd ** 2 / b_n) if a_n > 1 and b_n > 1 else float('nan')
    return a_mean - b_mean, se, best


def table(results, cells, losses, metrics=METRICS, baselines=BASELINES):
    head = metrics[0]
    lines = ['| cell | loss | seeds | ' + ' | '.join(metrics) + f' | Δp (last 20 it.) | per-seed {head} | '
             f'{head} − best baseline |', '|---|---|---|' + '---|' * (len(metrics) + 3)]
    for cell in cells:
        for loss in losses:
            runs = sorted((r for r in results if r['cell'] == cell and r['loss'] == loss), key=lambda r: r['seed'])
            if not runs:
                continue
            cells_txt = []
            for m in metrics:
                mean, sd, _ = stats([r[m] for r in runs])
                cells_txt.append(f'{mean:.1f} ± {sd:.1f}')
            dp = stats([r['dp'] for r in runs])[0]
            diff = ''
            if loss not in baselines:
                d, se, best = difference_to_best_baseline(results, cell, loss, head, baselines)
                diff = f'{d:+.1f} ± {se:.1f} (vs {best})' if best else ''
            per_seed = ', '.join(f"{r[head]:.1f}" for r in runs)
            lines.append(f"| {cell} | {loss} | {len(runs)} | {' | '.join(cells_txt)} | {dp:.3f} | {per_seed} "
                         f'| {diff} |')
    return '\n'.join(lines)


def curves_table(results, cells, losses, metric):
    """The evaluations along training of each (cell, loss)'s first seed: the schedule check's curves."""
    lines = [f'| cell | loss | seed | {metric} at epochs |', '|---|---|---|---|']
    for cell in cells:
        for loss in losses:
            runs = sorted((r for r in results if r['cell'] == cell and r['loss'] == loss), key=lambda r: r['seed'])
            if runs and runs[0].get('curve'):
                points = ', '.join(f'{e}: {v:.1f}' for e, v in runs[0]['curve'])
                lines.append(f"| {cell} | {loss} | {runs[0]['seed']} | {points} |")
    return '\n'.join(lines) if len(lines) > 2 else ''


def missing_table(results, scores, cells, losses):
    """Mean over the scored seeds of ``missing_label_scores`` per (cell with missing labels, loss)."""
    lines = ['| cell | loss | seeds | p kept positives | p missing positives | p true negatives | '
             'P(missing > negative) |', '|---|---|---|---|---|---|---|']
    for cell in (c for c in cells if CELLS[c][1] > 0):
        for loss in losses:
            runs = [scores[run_name(r)] for r in results if r['cell'] == cell and r['loss'] == loss
                    and run_name(r) in scores]
            if runs:
                means = [statistics.mean(r[k] for r in runs) for k in ('p_kept', 'p_missing', 'p_neg',
                                                                       'auc_missing')]
                lines.append(f'| {cell} | {loss} | {len(runs)} | ' + ' | '.join(f'{m:.3f}' for m in means) + ' |')
    return '\n'.join(lines) if len(lines) > 2 else ''


def multilabel_axes(ratios):
    """The multi-label figures: (file, cells, x of a cell, x label), against negatives per positive and rho."""
    return (('fig_asl_vs_negatives.png', [c for c in CELLS if CELLS[c][1] == 0.0],
             lambda c: ratios.get(c, float('nan')), 'negatives per positive (training labels)'),
            ('fig_asl_vs_missing.png', [c for c in CELLS if CELLS[c][0] == ALL],
             lambda c: CELLS[c][1], 'fraction rho of training labels missing'))


def det_axes(ratios):
    """The detection figures: against negatives per positive (the complete cells of the datasets), and per
    dataset against rho."""
    return (('fig_det_asl_vs_negatives.png', [c for c in DET_CELLS if DET_CELLS[c][1] == 0.0],
             lambda c: ratios.get(c, float('nan')), 'negatives per positive (FCOS training targets)'),
            *((f'fig_det_asl_vs_missing_{d}.png', [c for c in DET_CELLS if DET_CELLS[c][0] == d],
               lambda c: DET_CELLS[c][1], f'fraction rho of training boxes missing ({d})') for d in DET_DATASETS))


def figures(results, losses, axes, out, metric='mAP', baselines=BASELINES):
    """One figure per axis: each ASL loss's difference to the best baseline (+- its standard error)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    for filename, cells, x_of, xlabel in axes:
        fig, ax = plt.subplots(figsize=(5.5, 4))
        drawn = False
        for loss in losses:
            if loss in baselines:
                continue
            pts = [(x_of(c), *difference_to_best_baseline(results, c, loss, metric, baselines)[:2]) for c in cells]
            pts = [p for p in pts if p[1] == p[1]]
            if pts:
                x, d, se = zip(*sorted(pts))
                ax.errorbar(x, d, yerr=[s if s == s else 0 for s in se], marker='o', capsize=3, label=loss)
                drawn = True
        if not drawn:
            plt.close(fig)
            continue
        ax.axhline(0.0, color='gray', lw=0.8)
        versus = f'best of {" / ".join(baselines)}' if len(baselines) > 1 else baselines[0]
        ax.set(xlabel=xlabel, ylabel=f'{metric} − {versus} (points)',
               title='ASL against the better baseline (± s.e.)' if len(baselines) > 1
               else f'ASL against {baselines[0]} (± s.e.)')
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(osp.join(out, filename), dpi=120)
        plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arm', choices=('multilabel', 'detection'), default='multilabel')
    parser.add_argument('--cells', nargs='+', choices=list(CELLS) + list(DET_CELLS), help='default: the arm\'s')
    parser.add_argument('--losses', nargs='+', choices=list(LOSSES) + list(DET_LOSSES), help='default: the arm\'s')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--epochs', type=int, help='default: where every loss has stopped improving, 8 '
                        '(multi-label), the dataset\'s schedule (detection: DeepForest 60, fashion10 24)')
    parser.add_argument('--val-interval', type=int, help='epochs between evaluations (the curves); default 4 '
                        '(multi-label), the dataset\'s (detection: DeepForest 10, fashion10 2)')
    parser.add_argument('--out', help='default: work_dirs/asl_grid (multi-label), work_dirs/asl_grid_det')
    parser.add_argument('--score-missing', action='store_true',
                        help='multi-label: score the training canvases with each finished run of a cell with '
                        'missing labels (kept positives, missing positives, true negatives; missing_scores.json)')
    parser.add_argument('--report-only', action='store_true',
                        help='write the table and figures from the finished runs in results.json; train nothing')
    parser.add_argument('--data-root', help=f'default: {DATA_ROOT} (multi-label), {DET_DATA_ROOT}')
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs at a time; each gets cpu_count // jobs threads unless OMP_NUM_THREADS is set')
    args = parser.parse_args(argv)
    det = args.arm == 'detection'
    arm_cells, arm_losses = (DET_CELLS, DET_LOSSES) if det else (CELLS, LOSSES)
    args.cells = args.cells or list(arm_cells)
    args.losses = args.losses or list(arm_losses)
    wrong = [x for x in args.cells + args.losses if x not in arm_cells and x not in arm_losses]
    if wrong:
        parser.error(f'{", ".join(wrong)}: not a cell or loss of --arm {args.arm}')
    if det and args.score_missing:
        parser.error('--score-missing scores multi-label canvases; it has no detection form')
    if not det:
        args.epochs, args.val_interval = args.epochs or 8, args.val_interval or 4
    epochs_of = (lambda c: det_epochs(c, args.epochs)) if det else (lambda c: args.epochs)
    for cell in args.cells:
        interval = args.val_interval or det_dataset(cell)['val_interval']
        if epochs_of(cell) % interval:
            parser.error(f'{cell}: {epochs_of(cell)} epochs must be a multiple of --val-interval {interval}')
    args.out = osp.abspath(args.out or ('work_dirs/asl_grid_det' if det else 'work_dirs/asl_grid'))
    args.data_root = osp.abspath(args.data_root or (DET_DATA_ROOT if det else DATA_ROOT))
    os.makedirs(args.out, exist_ok=True)
    for cell in args.cells:  # also for --report-only: the head of the table is read from the cells
        (make_det_cell if det else make_cell)(cell, args.data_root)
    res_file = osp.join(args.out, 'results.json')
    results = load_json(res_file) if osp.exists(res_file) else []
    env = thread_env(args.jobs)
    todo = [] if args.report_only else [
        job for cell in args.cells for job in pending(results, [cell], args.losses, args.seeds, epochs_of(cell))]
    todo.sort(key=lambda job: job[2])  # seed-major across the cells too
    run_all(run_one, [(c, loss, s, args, env) for c, loss, s in todo], args.jobs, results,
            res_file, not_printed=('curve', ))
    kept = [r for r in results if r['cell'] in args.cells and r['epochs'] == epochs_of(r['cell'])
            and r['loss'] in args.losses]
    if det:
        ratios = det_ratios(args)
        head = ('training boxes (epochs): ' + ', '.join(
            f"{c} {training_boxes(det_ann_file(c, args.data_root, 'train'))} ({epochs_of(c)})" for c in args.cells)
            + '\n\nnegatives per positive (FCOS training targets): '
            + ', '.join(f'{c} {ratios[c]:.0f}' for c in args.cells))
        md = head + '\n\n' + table(kept, args.cells, args.losses, DET_METRICS, DET_BASELINES)
        axes, metric, baselines = det_axes(ratios), 'AP', DET_BASELINES
    else:
        md, axes = multilabel_report(kept, args)
        metric, baselines = 'mAP', BASELINES
    curves = curves_table(kept, args.cells, args.losses, metric)
    if curves:
        md += '\n\nAlong training (the test split, first seed):\n\n' + curves
    with open(osp.join(args.out, 'results.md'), 'w') as f:
        f.write(md + '\n')
    figures(kept, args.losses, axes, args.out, metric, baselines)
    print(md)


def det_ratios(args):
    """``det_negatives_per_positive`` of each cell, kept in ``negatives_per_positive.json`` with the SHA-256 of
    the cell's training annotations, and counted again when those change (a regenerated cell)."""
    path = osp.join(args.out, 'negatives_per_positive.json')
    counts = load_json(path) if osp.exists(path) else {}
    for cell in args.cells:
        ann_file = det_ann_file(cell, args.data_root, 'train')
        sha = file_sha256(ann_file) if osp.exists(ann_file) else 'absent'
        if counts.get(cell, {}).get('train_ann_sha256') != sha:
            counts[cell] = dict(det_negatives_per_positive(cell, args.data_root), train_ann_sha256=sha)
            dump_json(counts, path, indent=1)
    return {c: counts[c]['ratio'] for c in counts}


def multilabel_report(kept, args):
    """The multi-label table (with the training-canvas scores of --score-missing) and the figures' axes."""
    ratios = {c: negatives_per_positive(osp.join(cell_dir(c, args.data_root), 'annotations',
                                                 'instances_train.json')) for c in args.cells}
    score_file = osp.join(args.out, 'missing_scores.json')
    scores = load_json(score_file) if osp.exists(score_file) else {}
    if args.score_missing:
        for r in kept:
            if CELLS[r['cell']][1] > 0 and r['seed'] in args.seeds and run_name(r) not in scores:
                scores[run_name(r)] = score_missing(r, args, thread_env(1))
                dump_json(scores, score_file, indent=1)
                print(run_name(r), dumps_json(scores[run_name(r)]), flush=True)
    head = ('negatives per positive (training labels): '
            + ', '.join(f'{c} {ratios[c]:.2f}' for c in args.cells) + f'; {args.epochs} epochs')
    md = head + '\n\n' + table(kept, args.cells, args.losses)
    scored = missing_table(kept, scores, args.cells, args.losses)
    if scored:
        md += '\n\nThe training canvases scored by the final checkpoints (mean score per kind of label):\n\n' + scored
    return md, multilabel_axes(ratios)


if __name__ == '__main__':
    main()
