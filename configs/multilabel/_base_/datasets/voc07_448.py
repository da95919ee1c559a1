# Pascal-VOC 2007 multi-label (20 classes): trainval -> test. MMPretrain's VOC dataset (through
# VOC2007MultiLabel, which only adds a clear error for missing files); labels seen only on difficult objects
# are ignored in evaluation (target -1), as MMPretrain's VOC metrics do.
_base_ = ['./pipelines_448.py']
dataset_type = 'VOC2007MultiLabel'
data_root = 'data/VOC2007'
data_preprocessor = dict(num_classes=20)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(448, 448), keep_ratio=False),
    dict(type='PackInputs',
         meta_keys=('sample_idx', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                    'flip_direction', 'gt_label_difficult')),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='trainval', pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='test', test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
