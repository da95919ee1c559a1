# Twin of resnet18-w16_asl_1xb64_fashion-canvas.py that changes only the loss: focal loss, gamma = 2 (no alpha).
_base_ = './resnet18-w16_asl_1xb64_fashion-canvas.py'
model = dict(head=dict(loss=dict(gamma_pos=2.0, gamma_neg=2.0, clip=0.0)))
