#!/usr/bin/env python
"""Multi-label inference on images with an MMPretrain config of this plugin: every label whose score reaches
the threshold, optionally only among the top-k, with its score (ImageClassificationInferencer underneath).

    python demo/multilabel_demo.py IMAGE [IMAGE ...] --config CONFIG --checkpoint CHECKPOINT
        [--thr 0.5] [--topk K] [--device cpu] [--json out.json]

Example (the Fashion-MNIST canvas demo after `python tools/train.py
configs/multilabel/resnet18-w16_asl_1xb64_fashion-canvas.py`):

    python demo/multilabel_demo.py data/fashion_canvas/test/000000.png \\
        --config configs/multilabel/resnet18-w16_asl_1xb64_fashion-canvas.py \\
        --checkpoint work_dirs/resnet18-w16_asl_1xb64_fashion-canvas/epoch_6.pth --topk 3
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install
import mmdet_asl  # noqa: F401,E402
from mmdet_asl.utils.inference import predict_multilabel  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Multi-label inference: image -> labels with scores')
    parser.add_argument('images', nargs='+', help='image files')
    parser.add_argument('--config', required=True, help='MMPretrain multi-label config file')
    parser.add_argument('--checkpoint', required=True, help='checkpoint file (e.g. from tools/train.py)')
    parser.add_argument('--thr', type=float, default=0.5, help='score threshold in [0, 1] (default 0.5)')
    parser.add_argument('--topk', type=int, default=None, help='only the k highest scores are candidates')
    parser.add_argument('--device', default='cpu', help='device, e.g. cpu or cuda:0')
    parser.add_argument('--json', help='also write the predictions (labels and all scores) to this file')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    missing = [p for p in [args.config, args.checkpoint] + args.images if not osp.isfile(p)]
    if missing:
        raise FileNotFoundError(f'missing file(s): {", ".join(missing)}')
    from mmengine.config import Config

    from mmpretrain.apis import ImageClassificationInferencer
    cfg = Config.fromfile(args.config)
    if cfg.model.get('backbone', {}).get('init_cfg') is not None:
        cfg.model.backbone.init_cfg = None  # the checkpoint holds all weights
    inferencer = ImageClassificationInferencer(model=cfg, pretrained=args.checkpoint, device=args.device)
    predictions = predict_multilabel(inferencer, args.images, thr=args.thr, topk=args.topk)
    for pred in predictions:
        found = ', '.join(f'{p.get("class_name", p["label"])} {p["score"]:.3f}' for p in pred['labels'])
        print(f'{pred["image"]}: {found or "(no label reaches the threshold)"}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(predictions, f, indent=1)
    return predictions


if __name__ == '__main__':
    main()
