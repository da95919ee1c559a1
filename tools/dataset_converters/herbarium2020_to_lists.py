"""Herbarium 2020 (FGVC7) metadata -> MMPretrain ``CustomDataset`` lists.

Reads ``<root>/train/metadata.json`` (COCO-style: images, annotations with category_id, categories) and writes
``<root>/meta/train.txt`` and ``<root>/meta/val.txt`` (``<file_name> <label>`` per line, paths relative to
``<root>/train``) and ``<root>/meta/classes.txt`` (one category name per line, label order). The competition's
test labels are not public, so validation is a seeded per-class split of train: ``--val-ratio`` of each class's
images (at least one, and never a class's only image).

    python tools/dataset_converters/herbarium2020_to_lists.py data/herbarium2020 [--val-ratio 0.1] [--seed 0]
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import sys
from collections import defaultdict

import numpy as np

# The COCO checks of the pre-flight module, loaded by path: importing the mmdet_asl package would pull in
# torch and MMDetection for a JSON check.
_spec = importlib.util.spec_from_file_location('mmdet_asl_preflight', osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'mmdet_asl', 'utils', 'preflight.py'))
_preflight = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_preflight)
coco_file_problems = _preflight.coco_file_problems


def load_metadata(path: str):
    """(file names, labels, class names) from a Herbarium 2020 metadata.json; labels follow sorted category ids.

    A malformed file raises ValueError naming the file, the entry and what is wrong (see
    :func:`mmdet_asl.utils.preflight.coco_file_problems`), instead of a bare KeyError halfway through.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} not found; expected the Herbarium 2020 layout <root>/train/metadata.json')
    with open(path, 'rb') as f:
        raw = f.read()
    try:
        meta = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f'{path} is not valid JSON ({exc}); expected the Herbarium 2020 metadata.json') from None
    problems = coco_file_problems(meta)
    if problems:
        raise ValueError(f'{path} ' + f'\n{path} '.join(problems))
    cats = sorted(meta['categories'], key=lambda c: c['id'])
    label_of = {c['id']: i for i, c in enumerate(cats)}
    file_of = {im['id']: im['file_name'] for im in meta['images']}
    files, labels = [], []
    for ann in meta['annotations']:
        files.append(file_of[ann['image_id']])
        labels.append(label_of[ann['category_id']])
    return files, labels, [str(c.get('name', c['id'])) for c in cats]


def split(labels, val_ratio: float, seed: int):
    """Indices of (train, val): per class, round(val_ratio * n) images (>= 1 when n >= 2) go to val."""
    rng = np.random.default_rng(seed)
    by_class = defaultdict(list)
    for i, label in enumerate(labels):
        by_class[label].append(i)
    train, val = [], []
    for label in sorted(by_class):
        idx = rng.permutation(by_class[label]).tolist()
        n_val = 0 if len(idx) < 2 else min(max(1, round(val_ratio * len(idx))), len(idx) - 1)
        val += idx[:n_val]
        train += idx[n_val:]
    return sorted(train), sorted(val)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root', help='dataset root holding train/metadata.json')
    parser.add_argument('--val-ratio', type=float, default=0.1, help='share of each class for validation')
    parser.add_argument('--seed', type=int, default=0, help='seed of the split')
    args = parser.parse_args(argv)
    if not 0 <= args.val_ratio < 1:
        parser.error(f'--val-ratio must be in [0, 1), got {args.val_ratio}')
    files, labels, names = load_metadata(osp.join(args.root, 'train', 'metadata.json'))
    train, val = split(labels, args.val_ratio, args.seed)
    os.makedirs(osp.join(args.root, 'meta'), exist_ok=True)
    for name, idx in (('train', train), ('val', val)):
        with open(osp.join(args.root, 'meta', f'{name}.txt'), 'w', encoding='utf-8') as f:
            f.writelines(f'{files[i]} {labels[i]}\n' for i in idx)
    with open(osp.join(args.root, 'meta', 'classes.txt'), 'w', encoding='utf-8') as f:
        f.writelines(f'{n}\n' for n in names)
    print(f'{len(names)} classes, {len(train)} train, {len(val)} val images -> {osp.join(args.root, "meta")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
