# Runtime shared by the multi-label configs: MMPretrain's default runtime + this plugin's modules.
_base_ = 'mmpretrain::_base_/default_runtime.py'

default_scope = 'mmpretrain'
# `import mmdet_asl` registers everything once the plugin's __init__ imports the sub-packages; naming them
# here keeps the configs working either way.
custom_imports = dict(
    imports=['mmdet_asl', 'mmdet_asl.datasets', 'mmdet_asl.evaluation', 'mmdet_asl.models.heads',
             'mmdet_asl.models.classification'],
    allow_failed_imports=False)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2, save_best='multi-label/mAP',
                    rule='greater'))
# The official ASL train.py keeps an EMA of the weights (timm ModelEma, decay 0.9997, buffers included) and
# validates it; MMEngine's momentum is 1 - decay. EMAHook validates and saves the EMA weights.
custom_hooks = [dict(type='EMAHook', momentum=3e-4, update_buffers=True, priority='ABOVE_NORMAL')]
