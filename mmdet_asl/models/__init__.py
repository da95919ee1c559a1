from .losses import AsymmetricLoss

__all__ = ['AsymmetricLoss']
