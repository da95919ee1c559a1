# ASL (gamma+ 1, gamma- 2, m 0: the ASL paper's detection setting) on the long-tailed detection canvases: the
# twin of fcos_effnet-lite0_focal_fashion-longtail.py, which changes only loss_cls.
_base_ = './fcos_effnet-lite0_focal_fashion-longtail.py'

model = dict(
    bbox_head=dict(
        loss_cls=dict(
            _delete_=True, type='AsymmetricLoss', use_sigmoid=True, gamma_pos=1.0, gamma_neg=2.0, clip=0.0,
            loss_weight=1.0)))
