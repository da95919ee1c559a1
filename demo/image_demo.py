#!/usr/bin/env python
"""Detect objects in one image with a trained mmdet-asl detector; write the picture and the boxes.

    python demo/image_demo.py IMAGE CONFIG CHECKPOINT [--out-dir DIR] [--score-thr 0.3]
        [--ann-file COCO.json]

Writes ``DIR/<image name>.png`` (boxes drawn by MMDetection's ``DetLocalVisualizer``; with ``--ann-file``,
the image's ground truth on the left and the predictions on the right) and ``DIR/<image name>.json``
(``[{"bbox": [x1, y1, x2, y2], "score": s, "label": i, "class": name}, ...]`` in input-image pixels, every
box the detector returns at the config's ``test_cfg.score_thr``). Runs on the CPU unless ``--device`` says
otherwise. For the demo detector (``bash tools/run_detection_demo.sh``)::

    python demo/image_demo.py data/deepforest/images/val/2019_YELL_2_541000_4977000_image_crop_400_0.png \\
        configs/demo/fcos_effnet-lite0_asl_deepforest.py \\
        work_dirs/fcos_effnet-lite0_asl_deepforest/epoch_60.pth --out-dir outputs

(``epoch_<max_epochs>.pth``: the checkpoint ``tools/train.py`` writes last; a missing CHECKPOINT error names it
for the given config.)
"""
import argparse
import json
import os
import os.path as osp
import sys

import mmcv
import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import mmdet_asl  # noqa: F401,E402  (registers EfficientNetLite and AsymmetricLoss)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('image', help='image file')
    parser.add_argument('config', help='detector config')
    parser.add_argument('checkpoint', help='trained detector checkpoint (tools/train.py)')
    parser.add_argument('--out-dir', default='outputs', help='where the picture and the boxes go')
    parser.add_argument('--score-thr', type=float, default=0.3, help='lowest score drawn in the picture')
    parser.add_argument('--ann-file', help='COCO annotations holding this image: draw its ground truth too')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


def read_coco(ann_file: str) -> dict:
    """The parsed ``--ann-file``; a file that is not a COCO JSON object raises ValueError naming it."""
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'--ann-file {ann_file} does not exist')
    with open(ann_file, 'rb') as f:
        raw = f.read()
    try:
        coco = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f'--ann-file {ann_file} is not valid JSON ({exc}); expected a COCO annotation file') from None
    missing = [k for k in ('images', 'annotations', 'categories') if not isinstance(coco, dict)
               or not isinstance(coco.get(k), list)]
    if missing:
        raise ValueError(f'--ann-file {ann_file} has no {", ".join(repr(k) for k in missing)} list(s); expected a '
                         'COCO annotation file with "images", "annotations" and "categories"')
    return coco


def ground_truth(ann_file: str, image: str, coco: dict = None):
    """The image's non-crowd boxes (x1, y1, x2, y2) and labels (0-based) from a COCO file."""
    from mmengine.structures import InstanceData
    coco = read_coco(ann_file) if coco is None else coco
    name = osp.basename(image)
    ids = [im['id'] for im in coco['images'] if osp.basename(im['file_name']) == name]
    if not ids:
        raise KeyError(f'--ann-file {ann_file} has no image named {name}')
    cats = sorted(c['id'] for c in coco['categories'])
    anns = [a for a in coco['annotations'] if a['image_id'] == ids[0] and not a.get('iscrowd', 0)]
    boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in anns)],
                         dtype=torch.float32).reshape(-1, 4)
    return InstanceData(bboxes=boxes, labels=torch.tensor([cats.index(a['category_id']) for a in anns]))


def last_checkpoint(config: str) -> str:
    """The checkpoint ``tools/train.py CONFIG`` writes last: ``work_dirs/<config name>/epoch_<max_epochs>.pth``."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    work_dir = cfg.get('work_dir') or osp.join('work_dirs', osp.splitext(osp.basename(config))[0])
    max_epochs = (cfg.get('train_cfg') or {}).get('max_epochs')
    return osp.join(work_dir, f'epoch_{max_epochs}.pth' if max_epochs else 'iter_<max_iters>.pth')


def boxes_as_json(result, classes):
    pred = result.pred_instances
    return [dict(bbox=[round(float(v), 2) for v in box], score=round(float(score), 4), label=int(label),
                 **{'class': classes[int(label)]})
            for box, score, label in zip(pred.bboxes, pred.scores, pred.labels)]


def main(argv=None):
    args = parse_args(argv)
    for name, path in (('image', args.image), ('config', args.config)):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{name} {path} does not exist')
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} does not exist; tools/train.py {args.config} '
                                f'writes {last_checkpoint(args.config)}')
    gt = ground_truth(args.ann_file, args.image) if args.ann_file else None  # a bad file fails before the model
    from mmdet.apis import inference_detector, init_detector
    from mmdet.registry import VISUALIZERS
    model = init_detector(args.config, args.checkpoint, device=args.device)
    result = inference_detector(model, args.image)
    classes = model.dataset_meta['classes']
    os.makedirs(args.out_dir, exist_ok=True)
    stem = osp.splitext(osp.basename(args.image))[0]
    boxes = boxes_as_json(result, classes)
    with open(osp.join(args.out_dir, stem + '.json'), 'w') as f:
        json.dump(boxes, f, indent=1)
    if gt is not None:
        result.gt_instances = gt
    visualizer = VISUALIZERS.build(dict(type='DetLocalVisualizer', name=f'image_demo_{id(result)}', line_width=2))
    visualizer.dataset_meta = model.dataset_meta
    image = mmcv.imconvert(mmcv.imread(args.image), 'bgr', 'rgb')
    out_file = osp.join(args.out_dir, stem + '.png')
    visualizer.add_datasample(stem, image, result, draw_gt=bool(args.ann_file), draw_pred=True, show=False,
                              pred_score_thr=args.score_thr, out_file=out_file)
    kept = sum(b['score'] >= args.score_thr for b in boxes)
    print(f'{len(boxes)} boxes ({kept} with score >= {args.score_thr}) -> {out_file}, '
          f'{osp.join(args.out_dir, stem + ".json")}', flush=True)
    return out_file, boxes


if __name__ == '__main__':
    main()
