# NUS-WIDE multi-label (81 concepts): image list + label matrix, images without any concept dropped, a seeded
# 70/30 train/test split (split_seed 0). Layout: see mmdet_asl/datasets/multilabel.py (NUS_WIDE_LAYOUT).
_base_ = ['./pipelines_448.py']
dataset_type = 'NUSWIDEMultiLabel'
data_root = 'data/nus-wide/'
data_preprocessor = dict(num_classes=81)
nus_common = dict(type=dataset_type, data_root=data_root, image_list='ImageList/Imagelist.txt',
                  concepts_file='Concepts81.txt', label_dir='Groundtruth/AllLabels', img_prefix='Flickr',
                  train_ratio=0.7, split_seed=0, drop_unlabeled=True)
train_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(**nus_common, split='train', pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**nus_common, split='test', test_mode=True, pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
