from .backbones import *  # noqa
from .losses import AsymmetricLoss, AsymmetricQualityFocalLoss, AsymmetricVarifocalLoss
from .task_modules import AsymmetricFocalLossCost

__all__ = ['AsymmetricLoss', 'AsymmetricQualityFocalLoss', 'AsymmetricVarifocalLoss', 'AsymmetricFocalLossCost']
