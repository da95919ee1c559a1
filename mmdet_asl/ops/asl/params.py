"""The two named structures the loss is configured with: what it computes, and how it runs."""
import os
from typing import NamedTuple, Optional

FOCUSING_GRAD_MODES = ('full', 'detached')
IMPLS = ('eager', 'compiled')


class ASLParams(NamedTuple):
    """Hyper-parameters of Eq. 7 (see :func:`~mmdet_asl.ops.asl.reference.asymmetric_loss_reference`).

    Attributes:
        gamma_pos: focusing exponent gamma+ of positives (>= 0).
        gamma_neg: focusing exponent gamma- of negatives (>= 0). A value that changes every iteration
            (the adaptive asymmetry of Eq. 11) is passed to the loss as a tensor instead.
        clip: probability margin m in [0, 1) (Eq. 5).
        eps: floor of the probabilities inside the logarithms, in [0, 1). 0: no floor (the logarithms are
            log-sigmoids, finite for every finite logit, and every element keeps its gradient). A floor
            eps > 0 is the official implementation's ``clamp(min=eps)``: where it is active (a positive with
            p < eps, or with m = 0 a negative with 1 - p < eps) the loss is constant and its gradient 0.
        alpha: optional static weighting, alpha for positives, 1 - alpha for negatives.
        focusing_grad: 'full' (differentiate through the focusing weights, Eq. 8) or 'detached'.
    """
    gamma_pos: float = 0.0
    gamma_neg: float = 4.0
    clip: float = 0.05
    eps: float = 0.0
    alpha: Optional[float] = None
    focusing_grad: str = 'full'


class ExecOptions(NamedTuple):
    """How the loss runs; none of these change its value.

    Attributes:
        impl: 'eager' (plain PyTorch, no warm-up) or 'compiled' (the same kernel fused by
            ``torch.compile``: one pass over memory, a compilation of some seconds per configuration).
        validate: check the input values (label range, targets in [0, 1], finite logits, non-negative
            finite weights and avg_factor) before the kernel. Each check reads the device's answer
            (one host synchronisation per call); a validated training loop may turn it off.
    """
    impl: str = 'eager'
    validate: bool = True


ENV_FALSE = ('0', 'false', 'off', 'no')
ENV_TRUE = ('1', 'true', 'on', 'yes')


def impl_override() -> Optional[str]:
    """The implementation forced by the environment: ``MMDET_ASL_COMPILE=1`` (or true/on/yes) selects
    'compiled', ``=0`` (or false/off/no) 'eager'; unset or empty leaves the configured one; any other value
    raises ``ValueError`` naming the variable. Read once, when this module is imported."""
    value = os.environ.get('MMDET_ASL_COMPILE')
    if value is None or value.strip() == '':
        return None
    word = value.strip().lower()
    if word in ENV_FALSE:
        return 'eager'
    if word in ENV_TRUE:
        return 'compiled'
    raise ValueError(f'MMDET_ASL_COMPILE must be one of {ENV_TRUE} (compiled) or {ENV_FALSE} (eager), or unset; '
                     f'got {value!r}')


IMPL_OVERRIDE = impl_override()
