# Adaptive asymmetry (Sec. 2.7, Eq. 11; Table 3) on MS-COCO 2014: gamma- starts at 4 and follows the probability
# gap Delta p towards `target`. Table 3's rows: target 0 / 0.1 / 0.2 / 0.3, e.g.
#   --cfg-options custom_hooks.1.adaptive.target=0.2
# The paper does not give the step lambda; lam = 0.01 per iteration is this project's choice.
_base_ = './tresnet-l_asl_8xb16_coco14-448px.py'
custom_hooks = [
    dict(type='EMAHook', momentum=3e-4, update_buffers=True, priority='ABOVE_NORMAL'),
    dict(type='ProbabilityGapHook', adaptive=dict(target=0.1, lam=0.01, gamma_min=0.0, gamma_max=10.0)),
]
