# Twin of resnet101_asl_8xb16_coco14-448px.py that changes only the loss: binary cross-entropy (ASL with gamma+ =
# gamma- = 0, m = 0 is exactly BCE, same reduction and weights).
_base_ = './resnet101_asl_8xb16_coco14-448px.py'
model = dict(head=dict(loss=dict(gamma_pos=0.0, gamma_neg=0.0, clip=0.0)))
