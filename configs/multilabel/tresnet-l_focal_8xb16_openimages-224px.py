# Twin of tresnet-l_asl_8xb16_openimages-224px.py that changes only the loss: focal loss with gamma = 4, the
# paper's focal baseline on Open Images (appendix G; no alpha).
_base_ = './tresnet-l_asl_8xb16_openimages-224px.py'
model = dict(head=dict(loss=dict(gamma_pos=4.0, gamma_neg=4.0, clip=0.0)))
