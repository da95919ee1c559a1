# CPU demo with pretrained features: multi-label classification of Fashion-MNIST canvases (10 classes, 128x128)
# with ASL (gamma- 4, gamma+ 0, m 0.05), fine-tuning ImageNet EfficientNet-Lite0, AdamW + 1-cycle.
#   python tools/dataset_converters/make_fashion_canvases.py --size 128 --scale-range 1.2 2.2 \
#       --out data/fashion_canvas_128
#   python tools/model_converters/efficientnet_lite_to_mmdet.py --out data/pretrained/efficientnet_lite0_in1k_mmdet.pth
#   python tools/train.py configs/multilabel/effnet-lite0_asl_1xb32_fashion-canvas-128px.py
# The canvases are the 64-px demo's recipe (seed 0, 1-4 items) at twice the side, items included
# (--scale-range twice the default), so an item spans 1-2 cells of the stride-32 feature map.
_base_ = ['./_base_/datasets/fashion-canvas.py', './_base_/default_runtime.py']

# tools/model_converters/efficientnet_lite_to_mmdet.py writes it (nothing is downloaded at training time).
pretrained = 'data/pretrained/efficientnet_lite0_in1k_mmdet.pth'
data_root = 'data/fashion_canvas_128/'

# The weights were ported from TensorFlow-Lite: RGB scaled to [-1, 1] (mean = std = 127.5).
data_preprocessor = dict(num_classes=10, mean=[127.5] * 3, std=[127.5] * 3, to_rgb=True, to_onehot=True)
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmdet.EfficientNetLite',
        arch='tf_efficientnet_lite0',
        out_indices=(4, ),  # stride 32, 320 channels
        frozen_stages=3,  # stem + blocks.0-2 (strides 2-8): generic edges; their backward dominates on a CPU
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='MultiLabelLinearClsHead',
        num_classes=10,
        in_channels=320,
        loss=dict(type='mmdet.AsymmetricLoss', gamma_pos=0.0, gamma_neg=4.0, clip=0.05, loss_weight=1.0),
        thr=0.5))

# A CPU budget of 2.5-3.5 minutes a run on one thread: the first 1536 train canvases (48 iterations of
# 32 an epoch), 2 epochs, and the first 1000 test canvases.
train_dataloader = dict(batch_size=32, dataset=dict(data_root=data_root, indices=1536))
val_dataloader = dict(batch_size=50, dataset=dict(data_root=data_root, indices=1000))
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-2),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [dict(type='OneCycleLR', eta_max=1e-3, pct_start=0.2, by_epoch=True, convert_to_iter_based=True)]
train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=2)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(logger=dict(interval=16), checkpoint=dict(interval=2, max_keep_ckpts=1))
# A short run: no EMA (0.9997 needs thousands of iterations to warm up).
custom_hooks = []
randomness = dict(seed=0, deterministic=False)
