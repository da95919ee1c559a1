# Twin of resnet50_asl_8xb8_cub-448px.py that changes only the loss: standard softmax focal loss, gamma 2.
_base_ = './resnet50_asl_8xb8_cub-448px.py'
model = dict(head=dict(loss=dict(_delete_=True, type='SoftmaxFocalLoss', gamma=2.0)))
