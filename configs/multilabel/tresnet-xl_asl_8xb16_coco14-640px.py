# Table 8: TResNet-XL at 640 px on MS-COCO 2014 with the paper's recipe (ASL gamma- 4, gamma+ 0, m 0.05).
# MODEL_ZOO of the official repository: 88.4 mAP. 8 x 16 images at 640 px needs large-memory GPUs; with fewer,
# keep the total batch of 128 through auto_scale_lr (--auto-scale-lr) or gradient accumulation.
_base_ = [
    './_base_/models/tresnet-xl.py', './_base_/datasets/coco14_640.py',
    './_base_/schedules/adam_onecycle_60e.py', './_base_/default_runtime.py'
]
