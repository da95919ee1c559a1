from .asymmetry_controller import AsymmetryController, adaptive_gamma_update, probability_gap_from_sums
from .channels_last_hook import ChannelsLastHook
from .probability_gap_hook import ProbabilityGapHook

__all__ = [
    'AsymmetryController', 'ChannelsLastHook', 'ProbabilityGapHook', 'adaptive_gamma_update',
    'probability_gap_from_sums'
]
