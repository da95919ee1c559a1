"""mmdet-asl: the Asymmetric Loss for MMDetection and MMPretrain.

``import mmdet_asl`` (or ``custom_imports = dict(imports=['mmdet_asl'])`` in a config) registers the
plugin's modules: the loss and backbones in MMDetection's registries, hooks in MMEngine's root registry.
The classification pieces (MMPretrain datasets, transforms, metric, heads, single-label ASL) register
only when MMPretrain is installed: a detection user needs torch and the detection stack. The loss itself
lives in :mod:`mmdet_asl.ops.asl`, which imports nothing from OpenMMLab.
"""
from . import compat  # noqa: F401,I001  (registers the safe checkpoint loaders and the atomic checkpoint writes)
from .engine import ChannelsLastHook, ProbabilityGapHook  # noqa: F401
from .models import *  # noqa: F401,F403  (registers the modules)
from .version import __version__
from mmengine.config.utils import MODULE2PACKAGE

# `mmdet_asl::multilabel/...py` as a config base path (MMEngine resolves only the packages in this table);
# the configs ship in mmdet_asl/.mim/configs (see setup.py).
MODULE2PACKAGE.setdefault('mmdet_asl', 'mmdet_asl')

try:
    import mmpretrain  # noqa: F401
    HAS_MMPRETRAIN = True
except ImportError:
    HAS_MMPRETRAIN = False
if HAS_MMPRETRAIN:
    from . import datasets, evaluation  # noqa: F401  (MMPretrain datasets, transforms, metric)
    from .models import classification, heads  # noqa: F401  (MMPretrain heads, single-label ASL)

__all__ = ['__version__', 'HAS_MMPRETRAIN']
