# Twin of effnet-lite0_asl_1xb32_fashion-canvas-128px.py that changes only the loss: binary cross-entropy (ASL
# with gamma+ = gamma- = 0, m = 0 is exactly BCE).
_base_ = './effnet-lite0_asl_1xb32_fashion-canvas-128px.py'
model = dict(head=dict(loss=dict(gamma_pos=0.0, gamma_neg=0.0, clip=0.0)))
