# Twin of resnet50_asl-sl_8xb8_cub-448px.py that changes only the loss: the same softmax form with
# gamma+ = gamma- = 2 (focal loss, gamma 2).
_base_ = './resnet50_asl-sl_8xb8_cub-448px.py'
model = dict(head=dict(loss=dict(gamma_pos=2.0, gamma_neg=2.0)))
