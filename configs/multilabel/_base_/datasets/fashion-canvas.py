# Fashion-MNIST canvases (10 classes, 64x64, 1-4 real product images each), made by
#   python tools/dataset_converters/make_fashion_canvases.py        (needs: apt-get install -y dataset-fashion-mnist)
# Train canvases come from Fashion-MNIST's train split only, test canvases from its test split only.
dataset_type = 'CocoMultiLabel'
data_root = 'data/fashion_canvas/'
data_preprocessor = dict(num_classes=10, mean=[0.0, 0.0, 0.0], std=[255.0, 255.0, 255.0], to_rgb=True,
                         to_onehot=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='annotations/instances_train.json',
                 data_prefix='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='annotations/instances_test.json',
                 data_prefix='test', test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='ASLMultiLabelMetric', thr=0.5, topk=3)
test_evaluator = val_evaluator
