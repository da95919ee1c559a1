from .losses import AsymmetricLoss
from .backbones import *  # noqa

__all__ = ['AsymmetricLoss']
