"""What the plugin's loss modules share: the reductions they accept, and state buffers kept in float64."""
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
