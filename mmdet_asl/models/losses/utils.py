"""What the plugin's loss modules share: the reductions they accept, the check of a dense head's softmax layout,
and state buffers kept in float64."""
import inspect
from typing import Optional

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


def refuse_softmax_dense_head(name: str) -> None:
    """Refuse to be built by a dense head that made a softmax classifier for this loss.

    MMDetection's dense heads (FCOS, ATSS, RetinaNet, GFL, ...) read ``use_sigmoid`` from the loss's config dict
    before building the loss: without the key they set ``use_sigmoid_cls = False``, build C + 1 channels and label
    the background C, which a sigmoid loss would read as one more class, training every background location as a
    positive of it, silently. Called while the loss is built from a config without ``use_sigmoid``: the head
    under construction is the nearest caller frame whose ``self`` is a dense head.
    """
    from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
    frame = inspect.currentframe()
    while frame is not None:
        head = frame.f_locals.get('self')
        if isinstance(head, BaseDenseHead):
            if getattr(head, 'use_sigmoid_cls', True) is False:
                raise ValueError(f'{type(head).__name__} built a softmax classifier (C + 1 channels, background '
                                 f"last) for {name}, because it reads use_sigmoid from the loss's config dict: write "
                                 "use_sigmoid=True in loss_cls's config")
            return
        frame = frame.f_back


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
