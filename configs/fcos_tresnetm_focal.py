# The flagship's focal-loss baseline under its short name; the config is configs/fcos/fcos_tresnetm_focal.py
# ('mmdet_asl::fcos/fcos_tresnetm_focal.py' from other configs). Recipe and results: configs/fcos/README.md.
_base_ = './fcos/fcos_tresnetm_focal.py'
