# MMDetection's YOLOX-S config (the _base_ below) with the Asymmetric Loss as loss_cls; nothing else changes.
# YOLOX's sigmoid cross-entropy is ASL with gamma+ = gamma- = 0; here gamma+ = 1, gamma- = 2, m = 0.
_base_ = 'mmdet::yolox/yolox_s_8xb8-300e_coco.py'

custom_imports = dict(imports=['mmdet_asl'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(
        loss_cls=dict(
            _delete_=True,
            type='AsymmetricLoss',
            use_sigmoid=True,
            gamma_pos=1.0,
            gamma_neg=2.0,
            clip=0.0,
            reduction='sum',  # YOLOX divides the summed loss by its number of positives itself
            loss_weight=1.0)))
