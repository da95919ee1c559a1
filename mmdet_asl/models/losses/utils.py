"""What the plugin's loss modules share: the reductions they accept, the check of a dense head's softmax layout,
and state buffers kept in float64."""
from typing import Optional

import torch

REDUCTIONS = ('none', 'mean', 'sum')


def check_reduction(reduction: str) -> str:
    """``reduction`` if it is one of :data:`REDUCTIONS` (the value a loss is built with)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f'reduction must be one of {REDUCTIONS}, got {reduction!r}')
    return reduction


def resolve_reduction(reduction_override: Optional[str], reduction: str) -> str:
    """The reduction of one call: ``reduction_override`` (None or one of :data:`REDUCTIONS`), else the loss's."""
    if reduction_override not in (None, ) + REDUCTIONS:
        raise ValueError(f'reduction_override must be None or one of {REDUCTIONS}, got {reduction_override!r}')
    return reduction_override or reduction


def check_use_sigmoid(name: str, use_sigmoid: Optional[bool]) -> bool:
    """Whether the config wrote ``use_sigmoid=True`` (None: not written); any other value is refused."""
    if use_sigmoid is not None and use_sigmoid is not True:
        raise ValueError(f'{name} only supports use_sigmoid=True (one sigmoid per class); '
                         f'got use_sigmoid={use_sigmoid!r}')
    return use_sigmoid is True


def refuse_softmax_layout(name: str, pred, labels) -> None:
    """Refuse the logits of a dense head that built a softmax background channel.

    MMDetection's dense heads (FCOS, ATSS, RetinaNet, GFL, ...) read ``use_sigmoid`` from the loss's config dict,
    not from the built loss: without the key they build C + 1 channels and label the background C, which a sigmoid
    loss reads as one more class, so that every background location trains as a positive of it, silently. Its
    trace, checked when the config did not write ``use_sigmoid``: class-index labels none of which is the
    background index ``pred.shape[1]``, most of which are the last channel.
    """
    if torch.compiler.is_compiling():  # a host read would break the graph; eager calls check it
        return
    if not (isinstance(labels, torch.Tensor) and labels.dim() == 1 and labels.numel()
            and isinstance(pred, torch.Tensor) and pred.dim() == 2 and not labels.is_floating_point()):
        return
    channels = pred.shape[1]
    if bool((labels == channels).any()) or float((labels == channels - 1).float().mean()) <= 0.5:
        return
    raise ValueError(f'{name}: the labels have no background index {channels} (pred has {channels} channels) and '
                     f'most are {channels - 1}: the head built a softmax background channel (C + 1 = {channels}) '
                     f"because it reads use_sigmoid from the loss's config dict; write use_sigmoid=True in "
                     "loss_cls's config")


class Float64BuffersMixin:
    """Keeps the buffers named in ``_FLOAT64_BUFFERS`` in float64 through ``.half()``, ``.to(dtype)`` and the
    like; they follow the module's device. Put it before ``nn.Module`` in the bases."""

    _FLOAT64_BUFFERS = ()

    def _apply(self, fn, recurse=True):
        kept = {name: self._buffers[name] for name in self._FLOAT64_BUFFERS}
        for name in kept:
            self._buffers[name] = None  # nn.Module._apply skips None buffers
        try:
            super()._apply(fn, recurse)
        finally:
            for name, value in kept.items():
                # fn's device (a .to(device) / .cuda() / .half()), float64 kept
                self._buffers[name] = value.to(device=fn(value.new_empty(0)).device)
        return self
