# Single-label ASL (appendix H, Table 12: macro-F1) on Herbarium 2020 (FGVC7), with the CUB config's recipe.
# Lists from the competition's metadata (its test labels are not public, so a seeded split of train):
#   python tools/dataset_converters/herbarium2020_to_lists.py data/herbarium2020
# Layout: data/herbarium2020/{train/metadata.json, train/images/..., meta/{train,val,classes}.txt}.
_base_ = './resnet50_asl_8xb8_cub-448px.py'
data_root = 'data/herbarium2020'
num_classes = 32093  # the line count of meta/classes.txt that the converter writes
model = dict(head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)
herbarium = dict(_delete_=True, type='CustomDataset', data_root=data_root, data_prefix='train',
                 classes=data_root + '/meta/classes.txt')
train_dataloader = dict(dataset=dict(**herbarium, ann_file='meta/train.txt', pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(dataset=dict(**herbarium, ann_file='meta/val.txt', pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
