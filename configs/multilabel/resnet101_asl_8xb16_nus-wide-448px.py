# ResNet-101 with the paper's recipe on NUS-WIDE, 81 concepts (Tables 10-11's ResNet-101 rows).
_base_ = [
    './_base_/models/resnet101.py', './_base_/datasets/nus-wide_448.py',
    './_base_/schedules/adam_onecycle_60e.py', './_base_/default_runtime.py'
]
model = dict(head=dict(num_classes=81))
