"""mmdet-asl: the Asymmetric Loss for MMDetection and MMPretrain.

``import mmdet_asl`` (or ``custom_imports = dict(imports=['mmdet_asl'])`` in a config) registers the
plugin's modules in MMDetection's registries. The maths lives in :mod:`mmdet_asl.functional`, which
imports nothing from OpenMMLab.
"""
from .version import __version__
from .models import *  # noqa: F401,F403  (registers the modules)

__all__ = ['__version__']
