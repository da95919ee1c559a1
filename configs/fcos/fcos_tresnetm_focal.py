# FCOS (FCOS/ATSS improvements) + TResNet-M + FPN with FocalLoss (gamma 2): the ASL paper's detection baseline
# (appendix I), 8 GPUs x 6 images = batch 48. Backbone weights, data and results: configs/fcos/README.md.
_base_ = 'mmdet::fcos/fcos_r50-caffe_fpn_gn-head-center-normbbox-centeronreg-giou_1x_coco.py'

custom_imports = dict(imports=['mmdet_asl'], allow_failed_imports=False)

tresnet_checkpoint = 'checkpoints/tresnet_m_miil_in21k_ft_in1k.pth'

model = dict(
    # TResNet expects RGB in [0, 1], no mean/std normalisation (timm: mean 0, std 1 on [0, 1]).
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[0.0, 0.0, 0.0],
        std=[255.0, 255.0, 255.0],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='TResNet',
        arch='tresnet_m',
        out_indices=(0, 1, 2, 3),  # layer1..layer4, strides 4..32, channels 64/128/1024/2048
        frozen_stages=1,
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint=tresnet_checkpoint)),
    neck=dict(in_channels=[64, 128, 1024, 2048]),  # start_level=1 (C3..C5) as in the R50 config
    bbox_head=dict(
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)))

# Data: COCO 2017 in data/coco/ (MMDetection's layout), 1333x800, flip; 6 images per GPU.
train_dataloader = dict(batch_size=6, num_workers=4)
val_evaluator = dict(type='CocoMetric', metric='bbox')
test_evaluator = val_evaluator

# Schedule (paper): SGD momentum 0.9, weight decay 1e-4, lr 0.01, warm-up, x0.1 at epochs 40 and 60, 70 epochs.
max_epochs = 70
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=5)
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3.0, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[40, 60], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001),
    paramwise_cfg=dict(bias_lr_mult=2., bias_decay_mult=0.),
    clip_grad=None)
auto_scale_lr = dict(enable=False, base_batch_size=48)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=3))
