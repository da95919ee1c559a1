"""MMPretrain heads (registered in MMPretrain's ``MODELS``)."""
from .weighted_multilabel_head import WeightedMultiLabelClsHead, WeightedMultiLabelLinearClsHead

__all__ = ['WeightedMultiLabelClsHead', 'WeightedMultiLabelLinearClsHead']
