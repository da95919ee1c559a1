# ResNet-101 with the paper's recipe on MS-COCO 2014 (Fig. 8: CE ~83.3, focal ~83.8, ASL 85.0 mAP).
_base_ = [
    './_base_/models/resnet101.py', './_base_/datasets/coco14_448.py',
    './_base_/schedules/adam_onecycle_60e.py', './_base_/default_runtime.py'
]
