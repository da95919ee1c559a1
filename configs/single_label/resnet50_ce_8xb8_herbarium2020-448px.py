# Twin of resnet50_asl_8xb8_herbarium2020-448px.py that changes only the loss: standard softmax cross-entropy.
_base_ = './resnet50_asl_8xb8_herbarium2020-448px.py'
model = dict(head=dict(loss=dict(_delete_=True, type='CrossEntropyLoss', loss_weight=1.0)))
