# CPU demo: multi-label classification of Fashion-MNIST canvases (10 classes, 64x64) with ASL
# (gamma- 4, gamma+ 0, m 0.05), a narrow ResNet-18 from scratch, Adam + 1-cycle. Trains in minutes on a CPU.
#   apt-get install -y dataset-fashion-mnist && python tools/dataset_converters/make_fashion_canvases.py
#   python tools/train.py configs/multilabel/resnet18-w16_asl_1xb64_fashion-canvas.py
_base_ = ['./_base_/datasets/fashion-canvas.py', './_base_/default_runtime.py']
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet', depth=18, base_channels=16, stem_channels=16, out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='MultiLabelLinearClsHead',
        num_classes=10,
        in_channels=128,
        loss=dict(type='mmdet.AsymmetricLoss', gamma_pos=0.0, gamma_neg=4.0, clip=0.05, loss_weight=1.0),
        thr=0.5))
optim_wrapper = dict(
    optimizer=dict(type='Adam', lr=2e-3, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [dict(type='OneCycleLR', eta_max=2e-3, pct_start=0.2, by_epoch=True, convert_to_iter_based=True)]
train_cfg = dict(by_epoch=True, max_epochs=6, val_interval=2)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=2, max_keep_ckpts=1))
# A short run: no EMA (0.9997 needs thousands of iterations to warm up).
custom_hooks = []
randomness = dict(seed=0, deterministic=False)
