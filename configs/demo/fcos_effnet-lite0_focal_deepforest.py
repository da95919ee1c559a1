# FCOS + FPN fine-tuned from ImageNet EfficientNet-Lite0 on the DeepForest tiles (one class, 'Tree'), with
# FocalLoss (gamma 2, alpha 0.25): the twin of fcos_effnet-lite0_asl_deepforest.py, which changes only loss_cls.
#   bash tools/run_detection_demo.sh configs/demo/fcos_effnet-lite0_focal_deepforest.py
_base_ = [
    'mmdet::fcos/fcos_r50-caffe_fpn_gn-head-center-normbbox-centeronreg-giou_1x_coco.py', './_base_/deepforest_tta.py'
]

custom_imports = dict(imports=['mmdet_asl'], allow_failed_imports=False)

# tools/model_converters/efficientnet_lite_to_mmdet.py writes it (tools/run_detection_demo.sh runs that).
pretrained = 'data/pretrained/efficientnet_lite0_in1k_mmdet.pth'
data_root = 'data/deepforest/'
metainfo = dict(classes=('Tree', ), palette=[(0, 160, 0)])
image_size = 320

model = dict(
    # The weights were ported from TensorFlow-Lite: RGB scaled to [-1, 1] (mean = std = 127.5).
    data_preprocessor=dict(
        type='DetDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3, bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='EfficientNetLite',
        arch='tf_efficientnet_lite0',
        out_indices=(2, 3, 4),  # strides 8, 16, 32; channels 40, 112, 320
        # stem + blocks.0-1 (strides 2-4): their backward dominates on a CPU; blocks.2 (the stride-8 level,
        # where nearly every tree is assigned) is fine-tuned, which is worth its cost in AP50
        frozen_stages=2,
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[40, 112, 320], out_channels=64, start_level=0, num_outs=3),
    # Tree crowns are 12-80 px at 320 px: three levels (strides 8, 16, 32) cover them.
    bbox_head=dict(
        num_classes=1,
        in_channels=64,
        feat_channels=64,
        stacked_convs=2,
        strides=[8, 16, 32],
        regress_ranges=((-1, 64), (64, 128), (128, 1e8)),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)),
    test_cfg=dict(score_thr=0.05, max_per_img=300))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='RandomFlip', prob=[0.25, 0.25, 0.25], direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    batch_sampler=None,
    dataset=dict(
        type='CocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/train.json',
        data_prefix=dict(img='images/train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=2),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        type='CocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/val.json',
        data_prefix=dict(img='images/val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric', ann_file=data_root + 'annotations/val.json', metric='bbox')
test_evaluator = val_evaluator

# 11 iterations per epoch; warm-up 30 iterations, x0.1 for the last fifth; evaluate at the end only.
max_epochs = 60
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=30),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[48], gamma=0.1)
]
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001),
    paramwise_cfg=dict(bias_lr_mult=2., bias_decay_mult=0.),
    clip_grad=dict(_delete_=True, max_norm=35, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=4)
# NHWC batches: oneDNN's depthwise convolutions run faster channels-last (docs/benchmarks.md).
custom_hooks = [dict(type='ChannelsLastHook')]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=11),
    checkpoint=dict(type='CheckpointHook', interval=max_epochs, max_keep_ckpts=1),
    visualization=dict(type='DetVisualizationHook', draw=False))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
