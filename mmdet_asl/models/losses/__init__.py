from .asymmetric_loss import AsymmetricLoss

__all__ = ['AsymmetricLoss']
