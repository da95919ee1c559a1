from .backbones import *  # noqa
from .losses import AsymmetricLoss, AsymmetricQualityFocalLoss, AsymmetricVarifocalLoss
from .losses import EqualizedFocalLoss
from .task_modules import AsymmetricFocalLossCost

__all__ = ['AsymmetricLoss', 'AsymmetricQualityFocalLoss', 'AsymmetricVarifocalLoss', 'AsymmetricFocalLossCost',
           'EqualizedFocalLoss']
