# Single-label ASL for fine-grained classification (paper appendix H): softmax probabilities, gamma- = 4,
# gamma+ = 0, against the focal loss gamma = 2 (resnet50_focal-sl_8xb8_cub-448px.py), on CUB-200-2011 with
# MMPretrain's recipe (ResNet-50, 448, SGD). Reports top-1 accuracy and the macro-F1 (mean of per-class F1).
# Data: MMPretrain's CUB layout under data/CUB_200_2011. Nothing is downloaded: for pretrained weights use
#   --cfg-options model.backbone.init_cfg.type=Pretrained model.backbone.init_cfg.checkpoint=<local .pth>
#   model.backbone.init_cfg.prefix=backbone
_base_ = [
    'mmpretrain::_base_/models/resnet50.py',
    'mmpretrain::_base_/datasets/cub_bs8_448.py',
    'mmpretrain::_base_/schedules/cub_bs64.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmdet_asl', 'mmdet_asl.models.classification'], allow_failed_imports=False)
model = dict(
    backbone=dict(init_cfg=None),
    head=dict(num_classes=200,
              loss=dict(_delete_=True, type='AsymmetricLossSingleLabel', gamma_pos=0.0, gamma_neg=4.0, clip=0.0)))
val_evaluator = [
    dict(type='Accuracy', topk=(1, )),
    dict(type='SingleLabelMetric', items=('precision', 'recall', 'f1-score'), average='macro'),
]
test_evaluator = val_evaluator
default_hooks = dict(logger=dict(type='LoggerHook', interval=20))
