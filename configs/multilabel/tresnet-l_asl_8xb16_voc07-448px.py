# The paper's recipe on Pascal-VOC 2007 (trainval -> test), 20 classes.
_base_ = [
    './_base_/models/tresnet-l.py', './_base_/datasets/voc07_448.py',
    './_base_/schedules/adam_onecycle_60e.py', './_base_/default_runtime.py'
]
model = dict(head=dict(num_classes=20))
