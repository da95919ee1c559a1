# MS-COCO 2014 multi-label (80 classes): train2014 -> val2014, images without annotations dropped (as the
# official ASL code). Layout: data/coco/{annotations/instances_{train,val}2014.json, train2014/, val2014/}.
_base_ = ['./pipelines_448.py']
dataset_type = 'CocoMultiLabel'
data_root = 'data/coco/'
data_preprocessor = dict(num_classes=80)

train_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='annotations/instances_train2014.json',
                 data_prefix='train2014', drop_empty=True, pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='annotations/instances_val2014.json',
                 data_prefix='val2014', drop_empty=True, test_mode=True, pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
