"""The paper's multi-label metrics for MMPretrain configs (registered in MMPretrain's ``METRICS``)."""
from .multilabel_metric import ASLMultiLabelMetric, multilabel_metrics

__all__ = ['ASLMultiLabelMetric', 'multilabel_metrics']
