# The official ASL data recipe at 448: squish resize (no crop), Cutout with a random fill colour
# (cutout_factor 0.5), RandAugment; inputs scaled to [0, 1] (mean 0, std 255), RGB, no ImageNet normalisation.
image_size = 448
data_preprocessor = dict(
    mean=[0.0, 0.0, 0.0],
    std=[255.0, 255.0, 255.0],
    to_rgb=True,
    to_onehot=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=False),
    dict(type='CutoutRandomFill', cutout_factor=0.5),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10, magnitude_level=9,
         magnitude_std=0.5, hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic')),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=False),
    dict(type='PackInputs'),
]
# The paper's metrics: mAP, CP, CR, CF1, OP, OR, OF1 at thr and for the top-3 scores.
val_evaluator = dict(type='ASLMultiLabelMetric', thr=0.5, topk=3)
test_evaluator = val_evaluator
