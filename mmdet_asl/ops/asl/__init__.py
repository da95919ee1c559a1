"""The Asymmetric Loss itself, torch only (nothing from OpenMMLab).

* :mod:`.reference`: Eq. 7 and the probe sums of Eq. 9-10 in plain autograd, the specification.
* :mod:`.kernel`: loss and analytic gradient in one pass, the fast path.
* :mod:`.quality`: the same for the quality focal form (dense qualities, ``AsymmetricQualityFocalLoss``).
* :mod:`.function`: the custom operator (analytic backward, eager or compiled) and the functional API.
* :mod:`.checks`: argument and input validation; :mod:`.params`: the two configuration structures.
"""
from .function import apply_asymmetric_loss, apply_quality_focal_loss, asymmetric_loss
from .params import ASLParams, ExecOptions
from .reference import (
                        asymmetric_loss_reference,
                        probability_gap,
                        probe_sums_reference,
                        quality_asymmetric_loss_reference,
)
from .single_label import asymmetric_loss_single_label

__all__ = ['ASLParams', 'ExecOptions', 'apply_asymmetric_loss', 'apply_quality_focal_loss', 'asymmetric_loss',
           'asymmetric_loss_reference', 'asymmetric_loss_single_label', 'probability_gap', 'probe_sums_reference',
           'quality_asymmetric_loss_reference']
