# ResNet-101 with the paper's recipe on Pascal-VOC 2007 (trainval -> test), 20 classes (Table 9's ResNet-101 row).
_base_ = [
    './_base_/models/resnet101.py', './_base_/datasets/voc07_448.py',
    './_base_/schedules/adam_onecycle_60e.py', './_base_/default_runtime.py'
]
model = dict(head=dict(num_classes=20))
