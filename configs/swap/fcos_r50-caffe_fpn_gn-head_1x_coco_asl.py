# MMDetection's FCOS R50-caffe GN-head 1x config (the _base_ below) with ASL as loss_cls; nothing else changes.
# gamma+ = 1, gamma- = 2 (the paper's detection setting), m = 0: why in configs/swap/README.md.
_base_ = 'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'

custom_imports = dict(imports=['mmdet_asl'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(
        loss_cls=dict(
            _delete_=True,
            type='AsymmetricLoss',
            use_sigmoid=True,  # dense heads size cls_out_channels from it
            gamma_pos=1.0,
            gamma_neg=2.0,
            clip=0.0,
            loss_weight=1.0)))
