# The main job: FCOS + FPN fine-tuned from ImageNet EfficientNet-Lite0 on the DeepForest tiles, with the
# Asymmetric Loss (gamma+ 1, gamma- 2, m 0: the ASL paper's detection setting) in place of FocalLoss.
#   bash tools/run_detection_demo.sh
_base_ = './fcos_effnet-lite0_focal_deepforest.py'

model = dict(
    bbox_head=dict(
        loss_cls=dict(
            _delete_=True, type='AsymmetricLoss', use_sigmoid=True, gamma_pos=1.0, gamma_neg=2.0, clip=0.0,
            loss_weight=1.0)))
