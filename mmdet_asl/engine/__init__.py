from .asymmetry_controller import AsymmetryController, adaptive_gamma_update, probability_gap_from_sums
from .probability_gap_hook import ProbabilityGapHook

__all__ = ['AsymmetryController', 'ProbabilityGapHook', 'adaptive_gamma_update', 'probability_gap_from_sums']
