# Equalized Focal Loss (gamma_b 2, s 8, alpha 0.25: the EFL paper's defaults) on the long-tailed detection
# canvases: the twin of fcos_effnet-lite0_focal_fashion-longtail.py, which changes only loss_cls.
_base_ = './fcos_effnet-lite0_focal_fashion-longtail.py'

model = dict(
    bbox_head=dict(
        loss_cls=dict(
            _delete_=True, type='EqualizedFocalLoss', use_sigmoid=True, num_classes=10, gamma_b=2.0,
            scale_factor=8.0, alpha=0.25, loss_weight=1.0)))
