# Pascal-VOC 2007 from an MS-COCO-trained model (Table 9's "extra data" row): the backbone starts from a
# checkpoint of tresnet-l_asl_8xb16_coco14-448px.py (its 80-class head is not loaded; the 20-class head is new).
# Put the COCO checkpoint at the path below or pass --cfg-options model.backbone.init_cfg.checkpoint=<path>.
_base_ = './tresnet-l_asl_8xb16_voc07-448px.py'
model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='checkpoints/tresnet-l_asl_coco14-448px.pth',
                                         prefix='backbone')))
