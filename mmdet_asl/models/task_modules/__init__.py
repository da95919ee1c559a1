from .asymmetric_focal_loss_cost import AsymmetricFocalLossCost

__all__ = ['AsymmetricFocalLossCost']
