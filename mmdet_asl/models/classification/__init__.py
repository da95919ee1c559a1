"""MMPretrain losses (registered in MMPretrain's ``MODELS``)."""
from .single_label_asl import AsymmetricLossSingleLabel

__all__ = ['AsymmetricLossSingleLabel']
