# Twin of tresnet-l_asl_8xb16_coco14-448px.py that changes only the loss: focal loss, gamma = 2 (no alpha).
_base_ = './tresnet-l_asl_8xb16_coco14-448px.py'
model = dict(head=dict(loss=dict(gamma_pos=2.0, gamma_neg=2.0, clip=0.0)))
