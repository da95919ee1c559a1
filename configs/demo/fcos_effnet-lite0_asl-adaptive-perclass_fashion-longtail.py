# ASL on the long-tailed detection canvases with gamma- adapted per class (ProbabilityGapHook, Eq. 11 per
# class): each class's gamma- moves towards the value at which its positives are as confident as its
# negatives (Delta p target 0), so a class whose positives lag (a rare one) has its negatives down-weighted
# more. The first epoch (360 iterations) only collects statistics; a class updates after 10 positive slots.
_base_ = './fcos_effnet-lite0_asl_fashion-longtail.py'

custom_hooks = [
    dict(type='ChannelsLastHook'),
    dict(type='ProbabilityGapHook', adaptive=dict(target=0.0, lam=0.01, per_class=True, warmup_iters=360))
]
