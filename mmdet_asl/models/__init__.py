from .backbones import *  # noqa
from .losses import AsymmetricLoss

__all__ = ['AsymmetricLoss']
