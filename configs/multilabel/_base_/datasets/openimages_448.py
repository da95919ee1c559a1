# Open Images (V6 image-level labels) with partial labels. Train: verified present = 1, verified absent = 0,
# untagged = negative with weight `untagged_weight`, which reaches the loss as a per-label (N, C) weight
# (gt_label_weight -> PackInputs algorithm_keys -> WeightedMultiLabelLinearClsHead -> loss weight).
# Evaluation: untagged labels are ignored (target -1). `untagged_weight` 0.1 is this project's choice (the paper
# gives no value); change it with --cfg-options untagged_weight=... .
_base_ = ['./pipelines_448.py']
dataset_type = 'OpenImagesPartialLabel'
data_root = 'data/openimages/'
# The number of classes in annotations/classes.txt (9605 lines in V6's oidv6-classes-trainable.txt); set it to
# `wc -l < annotations/classes.txt` for another class list: a mismatch stops at the first batch with an error.
num_classes = 9605
untagged_weight = 0.1
data_preprocessor = dict(num_classes=num_classes)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(448, 448), keep_ratio=False),
    dict(type='CutoutRandomFill', cutout_factor=0.5),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10, magnitude_level=9,
         magnitude_std=0.5, hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic')),
    dict(type='PackInputs', algorithm_keys=('gt_label_weight', )),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, classes_file='annotations/classes.txt',
                 ann_file='annotations/oidv6-train-annotations-human-imagelabels.csv', data_prefix='train',
                 untagged='negative', untagged_weight=untagged_weight, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, classes_file='annotations/classes.txt',
                 ann_file='annotations/test-annotations-human-imagelabels.csv', data_prefix='test',
                 untagged='ignore', test_mode=True, pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
