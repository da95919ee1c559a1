"""Multi-label datasets and transforms for MMPretrain configs (registered in MMPretrain's registries)."""
from .multilabel import CocoMultiLabel, NUSWIDEMultiLabel, OpenImagesPartialLabel, VOC2007MultiLabel
from .transforms import CutoutRandomFill

__all__ = ['CocoMultiLabel', 'VOC2007MultiLabel', 'NUSWIDEMultiLabel', 'OpenImagesPartialLabel', 'CutoutRandomFill']
