# The paper's recipe on NUS-WIDE (81 concepts, seeded 70/30 split).
_base_ = [
    './_base_/models/tresnet-l.py', './_base_/datasets/nus-wide_448.py',
    './_base_/schedules/adam_onecycle_60e.py', './_base_/default_runtime.py'
]
model = dict(head=dict(num_classes=81))
