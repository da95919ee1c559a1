# TResNet-L (timm 'tresnet_l', 2432 features) + global average pooling + a linear multi-label head, ASL loss.
# Nothing is downloaded: set model.backbone.checkpoint_path to a local timm ImageNet checkpoint of tresnet_l
# (e.g. --cfg-options model.backbone.checkpoint_path=checkpoints/tresnet_l.pth), or `load_from` to a full
# classifier checkpoint of this config.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='TIMMBackbone', model_name='tresnet_l', pretrained=False, checkpoint_path=''),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='MultiLabelLinearClsHead',
        num_classes=80,
        in_channels=2432,
        # ASL, the paper's setting (gamma- = 4, gamma+ = 0, m = 0.05). Our loss (mmdet_asl), reached across
        # registry scopes. Mean over the batch of the sum over classes (the head passes avg_factor = N).
        # focusing_grad='full' (default) differentiates the focusing weight (Eq. 8); the official train.py detaches
        # it: focusing_grad='detached'. docs/ablations.md measures both.
        loss=dict(type='mmdet.AsymmetricLoss', gamma_pos=0.0, gamma_neg=4.0, clip=0.05, loss_weight=1.0),
        thr=0.5))
