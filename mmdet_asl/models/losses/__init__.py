from .asymmetric_loss import AsymmetricLoss
from .asymmetric_quality_focal_loss import AsymmetricQualityFocalLoss
from .asymmetric_varifocal_loss import AsymmetricVarifocalLoss
from .equalized_focal_loss import EqualizedFocalLoss

__all__ = ['AsymmetricLoss', 'AsymmetricQualityFocalLoss', 'AsymmetricVarifocalLoss', 'EqualizedFocalLoss']
