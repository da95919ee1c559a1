"""Draw a few samples of a config's dataset, after its pipeline, with their labels (and boxes for detection).

    python tools/analysis_tools/browse_dataset.py CONFIG --output-dir browse/ [--phase train] [--num 8]
        [--cfg-options train_dataloader.dataset.data_root=...]

Works for MMDetection configs (``gt_instances``: boxes with class names) and MMPretrain configs
(``gt_label`` / ``gt_score``: the positive class names written on the image). One PNG per sample.
"""
import argparse
import os
import os.path as osp
import sys
from typing import List

import cv2
import numpy as np
from mmengine.config import Config, DictAction
from mmengine.registry import DATASETS, init_default_scope

COLOR = (0, 255, 0)  # BGR


def sample_labels(sample, classes) -> List[str]:
    """Names of a classification sample's positive classes."""
    if 'gt_score' in sample:
        idx = np.flatnonzero(np.asarray(sample.gt_score) > 0.5)
    elif 'gt_label' in sample:
        idx = np.asarray(sample.gt_label).reshape(-1)
    else:
        return []
    return [str(classes[i]) if classes else str(i) for i in idx]


def draw(packed: dict, classes) -> np.ndarray:
    """BGR image of a packed sample with its annotations drawn on it."""
    img = packed['inputs'].numpy().transpose(1, 2, 0).copy()
    img = np.ascontiguousarray(img.astype(np.uint8))
    sample = packed['data_samples']
    if 'gt_instances' in sample:
        boxes = sample.gt_instances.bboxes
        boxes = getattr(boxes, 'tensor', boxes)  # MMDetection's HorizontalBoxes or a plain (K, 4) tensor
        for box, label in zip(boxes.tolist(), sample.gt_instances.labels.tolist()):
            x1, y1, x2, y2 = (int(round(v)) for v in box)
            cv2.rectangle(img, (x1, y1), (x2, y2), COLOR, 1)
            cv2.putText(img, str(classes[label]) if classes else str(label), (x1, max(y1 - 2, 8)),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.3, COLOR, 1)
    else:
        for row, name in enumerate(sample_labels(sample, classes)):
            cv2.putText(img, name, (2, 10 + 10 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.3, COLOR, 1)
    return img


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--output-dir', required=True, help='where the PNGs go')
    parser.add_argument('--phase', default='train', choices=['train', 'val', 'test'])
    parser.add_argument('--num', type=int, default=8, help='number of samples (the first ones)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        parser.error(f'config: {args.config} not found')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    loader = cfg.get(f'{args.phase}_dataloader')
    if not loader:
        parser.error(f'--phase {args.phase}: the config has no {args.phase}_dataloader')
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataset = DATASETS.build(loader.dataset)
    classes = dataset.metainfo.get('classes')
    os.makedirs(args.output_dir, exist_ok=True)
    for i in range(min(args.num, len(dataset))):
        cv2.imwrite(osp.join(args.output_dir, f'{args.phase}_{i:04d}.png'), draw(dataset[i], classes))
    print(f'{min(args.num, len(dataset))} of {len(dataset)} samples -> {args.output_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
