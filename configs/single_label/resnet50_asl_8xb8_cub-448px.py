# Single-label ASL as the paper ran it (appendix H): the multi-label sigmoid ASL (gamma- 4, gamma+ 0, m 0.05) on
# one-hot targets, on CUB-200-2011 with MMPretrain's recipe (ResNet-50, 448, SGD). Top-1 accuracy and macro-F1.
# Twins: resnet50_ce_* (softmax cross-entropy), resnet50_focal_* (softmax focal loss, gamma 2). Nothing is
# downloaded; pretrained weights: --cfg-options model.backbone.init_cfg.type=Pretrained
#   model.backbone.init_cfg.checkpoint=<local .pth> model.backbone.init_cfg.prefix=backbone
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
              loss=dict(_delete_=True, type='mmdet.AsymmetricLoss', gamma_pos=0.0, gamma_neg=4.0, clip=0.05)))
val_evaluator = [
    dict(type='Accuracy', topk=(1, )),
    dict(type='SingleLabelMetric', items=('precision', 'recall', 'f1-score'), average='macro'),
]
test_evaluator = val_evaluator
default_hooks = dict(logger=dict(type='LoggerHook', interval=20))
