# Twin of resnet18-w16_asl_1xb64_fashion-canvas.py that changes only the loss: binary cross-entropy (ASL with
# gamma+ = gamma- = 0, m = 0 is exactly BCE).
_base_ = './resnet18-w16_asl_1xb64_fashion-canvas.py'
model = dict(head=dict(loss=dict(gamma_pos=0.0, gamma_neg=0.0, clip=0.0)))
