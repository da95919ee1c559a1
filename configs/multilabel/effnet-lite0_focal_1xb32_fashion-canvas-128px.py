# Twin of effnet-lite0_asl_1xb32_fashion-canvas-128px.py that changes only the loss: focal loss, gamma = 2 (no
# alpha).
_base_ = './effnet-lite0_asl_1xb32_fashion-canvas-128px.py'
model = dict(head=dict(loss=dict(gamma_pos=2.0, gamma_neg=2.0, clip=0.0)))
