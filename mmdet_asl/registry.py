"""The ``mmdet_asl`` registry scope, so that configs can inherit from this package as ``mmdet_asl::...``.

MMEngine tags every built object of a base config loaded as ``mmdet_asl::multilabel/x.py`` with
``_scope_='mmdet_asl'`` and then looks for registries of that scope (it imports ``mmdet_asl.registry``).
The plugin has no modules of its own kind: its loss and backbones live in MMDetection's registries, its
classification pieces in MMPretrain's, its hooks in MMEngine's. So each registry here is an empty child of
MMEngine's root whose look-up goes on in the registry of the *config's* ``default_scope`` (``mmdet`` for the
detection configs, ``mmpretrain`` for the classification ones): ``RandomFlip`` or ``ResNet``, which both
libraries define, resolve to the library the config was written for, as they do without the ``::`` path.
"""
from importlib import import_module
from typing import Optional

import mmengine.registry as mmengine_registry
from mmengine.registry import DefaultScope, Registry

SCOPE = 'mmdet_asl'


def config_scope() -> Optional[str]:
    """The ``default_scope`` in force before MMEngine switched to ``mmdet_asl`` for a tagged config.

    ``DefaultScope.overwrite_default_scope`` adds a temporary instance for the tag and keeps the earlier ones
    (the Runner's, from the config's ``default_scope``); the latest of those is the config's scope.
    """
    for instance in reversed(list(DefaultScope._instance_dict.values())):
        if instance.scope_name != SCOPE:
            return instance.scope_name
    return None


class PluginScopeRegistry(Registry):
    """A registry of scope ``mmdet_asl`` that resolves names in the config's own library.

    Scoped names (``mmdet.RandomFlip``) and names registered under the root resolve as in any registry.
    """

    def get(self, key: str):
        scope, real_key = self.split_scope_key(key)
        if scope is None and real_key not in self._module_dict:
            owner = config_scope()
            if owner not in (None, 'mmengine'):
                try:
                    import_module(f'{owner}.registry')
                except ImportError:
                    pass
                registry = self._get_root_registry()._search_child(owner)
                if registry is not None and registry is not self:
                    found = registry.get(real_key)
                    if found is not None:
                        return found
        return super().get(key)


def _plugin_registry(root: Registry) -> Registry:
    existing = root._children.get(SCOPE)
    if existing is not None:  # a re-import (importlib.reload) keeps the registries already in the tree
        return existing
    return PluginScopeRegistry(root.name, parent=root, scope=SCOPE, locations=['mmdet_asl'])


# One child per MMEngine root registry (models, datasets, transforms, metrics, hooks, optimizers, ...).
REGISTRIES = {name: _plugin_registry(getattr(mmengine_registry, name))
              for name in dir(mmengine_registry) if isinstance(getattr(mmengine_registry, name), Registry)}
globals().update(REGISTRIES)

__all__ = ['SCOPE', 'PluginScopeRegistry', 'config_scope', *REGISTRIES]
