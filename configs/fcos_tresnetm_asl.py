# The flagship under its short name: `python tools/train.py configs/fcos_tresnetm_asl.py`. The config itself is
# configs/fcos/fcos_tresnetm_asl.py, which other configs name as 'mmdet_asl::fcos/fcos_tresnetm_asl.py'
# (MMEngine's package paths need a folder). Recipe and results: configs/fcos/README.md.
_base_ = './fcos/fcos_tresnetm_asl.py'
