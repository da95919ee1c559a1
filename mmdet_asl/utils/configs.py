"""Config helpers for the experiment tools, which write small configs on top of the shipped ones."""
from mmengine.config import Config


def custom_hooks_with(config: str, hook: dict) -> list:
    """``config``'s ``custom_hooks`` with ``hook`` in place of any hook of its type, else appended.

    An experiment that probes or adapts a run (e.g. with ``ProbabilityGapHook``) must keep the config's other
    hooks (``ChannelsLastHook``, ``EMAHook``): writing ``custom_hooks = [hook]`` would silently drop them.

    Args:
        config (str): path of the config the experiment inherits.
        hook (dict): the hook config to add, e.g. ``dict(type='ProbabilityGapHook')``.

    Returns:
        list[dict]: the hooks for the experiment's config.
    """
    hooks = Config.fromfile(config).to_dict().get('custom_hooks', [])
    kept = [h for h in hooks if h.get('type') != hook['type']]
    position = next((i for i, h in enumerate(hooks) if h.get('type') == hook['type']), len(kept))
    return kept[:position] + [dict(hook)] + kept[position:]
