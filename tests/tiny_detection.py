"""A tiny deterministic CPU detection setup (synthetic COCO-format data + a small FCOS/TResNet with ASL and the
adaptive probability-gap hook) shared by the checkpoint and fault-injection tests."""
import json
import os
import os.path as osp

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
BASE_CONFIG = osp.join(ROOT, 'configs', 'demo', 'fcos_tresnet_asl_deepforest.py')


def make_coco(root: str, num_images: int = 8, size: int = 64, seed: int = 0) -> str:
    """Write ``num_images`` images with one or two filled rectangles each and their COCO annotations."""
    import cv2
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    images, anns = [], []
    for i in range(num_images):
        img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        for _ in range(1 + i % 2):
            w, h = rng.integers(12, 28, 2)
            x, y = rng.integers(0, size - w), rng.integers(0, size - h)
            img[y:y + h, x:x + w] = (40, 200, 40)
            anns.append(dict(id=len(anns) + 1, image_id=i + 1, category_id=1, bbox=[int(x), int(y), int(w), int(h)],
                             area=int(w * h), iscrowd=0))
        cv2.imwrite(osp.join(root, 'images', f'{i}.png'), img)
        images.append(dict(id=i + 1, file_name=f'{i}.png', width=size, height=size))
    ann_file = osp.join(root, 'annotations', 'train.json')
    with open(ann_file, 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=[dict(id=1, name='box')]), f)
    return ann_file


def tiny_config(data_root: str, work_dir: str, max_epochs: int = 3, extra_hooks=()):
    """The demo detector at 64 px, 8 images, batch 2, no random augmentation, a checkpoint every epoch."""
    from mmengine.config import Config
    cfg = Config.fromfile(BASE_CONFIG)
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                dict(type='Resize', scale=(64, 64), keep_ratio=True), dict(type='PackDetInputs')]
    dataset = dict(type='CocoDataset', data_root=data_root, metainfo=dict(classes=('box', )),
                   ann_file='annotations/train.json', data_prefix=dict(img='images/'),
                   filter_cfg=dict(filter_empty_gt=True), pipeline=pipeline)
    cfg.train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                                sampler=dict(type='DefaultSampler', shuffle=True), dataset=dataset)
    cfg.val_dataloader = cfg.test_dataloader = None
    cfg.val_cfg = cfg.test_cfg = cfg.val_evaluator = cfg.test_evaluator = None
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs + 1)
    cfg.param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=4)]
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1, max_keep_ckpts=-1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.custom_hooks = [dict(type='ProbabilityGapHook',
                             adaptive=dict(target=0.3, lam=0.5, gamma_max=6.0))] + list(extra_hooks)
    cfg.randomness = dict(seed=0)  # CPU kernels are deterministic; no global torch flags to restore
    cfg.work_dir = work_dir
    cfg.experiment_name = 'tiny'
    return cfg
