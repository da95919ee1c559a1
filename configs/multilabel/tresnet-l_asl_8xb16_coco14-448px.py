# The paper's recipe on MS-COCO 2014: TResNet-L, 448, ASL (gamma- 4, gamma+ 0, m 0.05), Adam + 1-cycle
# (max lr 2e-4), 60 epochs, Cutout + RandAugment, [0, 1] inputs, EMA of the weights (decay 0.9997).
# Paper (Fig. 8 / MODEL_ZOO): 86.6 mAP with ImageNet-pretrained TResNet-L (set model.backbone.checkpoint_path).
_base_ = [
    './_base_/models/tresnet-l.py', './_base_/datasets/coco14_448.py',
    './_base_/schedules/adam_onecycle_60e.py', './_base_/default_runtime.py'
]
