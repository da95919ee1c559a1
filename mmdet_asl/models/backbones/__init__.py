from .efficientnet_lite import EfficientNetLite
from .efficientnet_lite_convert import convert_efficientnet_pytorch
from .tresnet import TResNet, convert_tresnet_state_dict

__all__ = ['EfficientNetLite', 'convert_efficientnet_pytorch', 'TResNet', 'convert_tresnet_state_dict']
