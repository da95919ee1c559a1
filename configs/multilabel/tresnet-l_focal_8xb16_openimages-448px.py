# Twin of tresnet-l_asl_8xb16_openimages-448px.py that changes only the loss (and starts from its own stage-1 run):
# focal loss with gamma = 4, the paper's focal baseline on Open Images (appendix G; no alpha).
_base_ = './tresnet-l_asl_8xb16_openimages-448px.py'
model = dict(head=dict(loss=dict(gamma_pos=4.0, gamma_neg=4.0, clip=0.0)))
load_from = 'work_dirs/tresnet-l_focal_8xb16_openimages-224px/epoch_30.pth'
