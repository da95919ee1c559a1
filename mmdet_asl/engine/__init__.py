from .probability_gap_hook import ProbabilityGapHook, adaptive_gamma_update

__all__ = ['ProbabilityGapHook', 'adaptive_gamma_update']
