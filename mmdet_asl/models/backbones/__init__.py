from .tresnet import TResNet, convert_tresnet_state_dict

__all__ = ['TResNet', 'convert_tresnet_state_dict']
