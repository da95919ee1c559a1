"""Feed the model channels-last (NHWC) image batches.

    custom_hooks = [dict(type='ChannelsLastHook')]

PyTorch's oneDNN (CPU) and cuDNN (GPU, with mixed precision) convolutions, depthwise ones above all, run
faster on NHWC tensors, and a convolution given an NHWC input returns an NHWC output, so converting the
batch once makes the whole backbone, neck and head run in that layout. The hook converts the data
preprocessor's output, not the weights: parameters, gradients, optimizer state, checkpoints and DDP's
gradient buckets keep their usual layout, and a checkpoint trained with the hook loads anywhere. Results
equal those without the hook up to floating-point summation order. ``docs/benchmarks.md`` has the
measured speed-up.
"""
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.registry import HOOKS

__all__ = ['ChannelsLastHook', 'feed_channels_last', 'to_channels_last']


def to_channels_last(data):
    """Return ``data`` with its ``inputs`` batch in NHWC when it is a 4-D tensor, else ``data`` itself."""
    inputs = data.get('inputs') if isinstance(data, dict) else None
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 4:
        return data
    return {**data, 'inputs': inputs.contiguous(memory_format=torch.channels_last)}


def feed_channels_last(model):
    """Make ``model``'s data preprocessor return NHWC batches; returns the handle that undoes it (``.remove()``).

    ``model`` may be wrapped (DDP, or a test-time augmentation model around the detector that preprocesses).
    """
    if is_model_wrapper(model):
        model = model.module
    if isinstance(model, BaseTTAModel):
        model = model.module
    preprocessor = getattr(model, 'data_preprocessor', None)
    if not isinstance(preprocessor, torch.nn.Module):
        raise TypeError(f'ChannelsLastHook needs a model with a data_preprocessor module; '
                        f'{type(model).__name__} has {type(preprocessor).__name__}')
    return preprocessor.register_forward_hook(lambda module, args, output: to_channels_last(output))


@HOOKS.register_module()
class ChannelsLastHook(Hook):
    """Convert every batch the model's data preprocessor returns to channels-last memory format.

    Applies to training, validation and testing alike (``feed_channels_last`` once before the run).
    """

    priority = 'VERY_HIGH'

    def __init__(self):
        self._handle = None

    def before_run(self, runner) -> None:
        if self._handle is None:
            self._handle = feed_channels_last(runner.model)

    def after_run(self, runner) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
