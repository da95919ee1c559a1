"""mmdet-asl: the Asymmetric Loss for MMDetection and MMPretrain.

``import mmdet_asl`` (or ``custom_imports = dict(imports=['mmdet_asl'])`` in a config) registers the
plugin's modules: losses and backbones in MMDetection's registries, hooks in MMEngine's root
registry (so MMDetection and MMPretrain configs both find them). The maths lives in :mod:`mmdet_asl.functional`, which
imports nothing from OpenMMLab.
"""
from .version import __version__
from . import compat  # noqa: F401  (lets MMEngine resume on torch >= 2.6)
from .models import *  # noqa: F401,F403  (registers the modules)
from .engine import ProbabilityGapHook  # noqa: F401
from . import datasets, evaluation  # noqa: F401  (MMPretrain datasets, transforms, metric)
from .models import classification, heads  # noqa: F401  (MMPretrain heads, single-label ASL)

__all__ = ['__version__']
