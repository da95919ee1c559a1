# From-scratch baseline: FCOS + a small TResNet trained FROM SCRATCH on CPU on the DeepForest sample data (aerial RGB
# tiles, one class 'Tree'; tools/dataset_converters/prepare_deepforest.py). FocalLoss (gamma=2, alpha=0.25): the twin of
# fcos_tresnet_asl_deepforest.py, which changes only loss_cls.
#
# The model is configs/fcos_tresnetm_focal.py shrunk to fit a 2-core CPU budget (about 1 s per iteration):
# TResNet with layers [1, 1, 1, 1] and width 0.25 (channels 16/32/256/512; no ImageNet weights can be
# fetched here, so it trains from scratch), FPN/head 32 channels, 2 stacked head convs; the 400x400 tiles
# are resized to 320x320, 4 per batch.
#   python tools/train.py configs/demo/fcos_tresnet_focal_deepforest.py
_base_ = '../fcos/fcos_tresnetm_focal.py'

data_root = 'data/deepforest/'
metainfo = dict(classes=('Tree', ), palette=[(0, 160, 0)])

model = dict(
    backbone=dict(
        model_kwargs=dict(layers=[1, 1, 1, 1], width_factor=0.25),
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),  # from scratch (timm's initialisation)
    neck=dict(in_channels=[16, 32, 256, 512], out_channels=32),
    bbox_head=dict(num_classes=1, in_channels=32, feat_channels=32, stacked_convs=2),
    test_cfg=dict(max_per_img=300))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(320, 320), keep_ratio=True),
    dict(type='RandomFlip', prob=[0.25, 0.25, 0.25], direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(320, 320), keep_ratio=True),
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

# 20 epochs x 11 iterations, warm-up 50 iterations, x0.1 at epoch 16; evaluate at the end only.
max_epochs = 20
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[16], gamma=0.1)
]
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001),
    clip_grad=dict(_delete_=True, max_norm=35, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=4)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=max_epochs, max_keep_ckpts=1),
    visualization=dict(type='DetVisualizationHook', draw=False))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
