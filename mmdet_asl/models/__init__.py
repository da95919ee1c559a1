from .backbones import *  # noqa
from .losses import AsymmetricLoss, AsymmetricQualityFocalLoss, AsymmetricVarifocalLoss

__all__ = ['AsymmetricLoss', 'AsymmetricQualityFocalLoss', 'AsymmetricVarifocalLoss']
