"""Config helpers: the experiment tools' run configs (hook list, inheriting file), and the swap of MMDetection's
focal-family losses for ASL.

``swap_to_asl`` rewrites a detector config so that each classification loss becomes its asymmetric counterpart
(and a DETR matcher's ``FocalLossCost`` the matching ``AsymmetricFocalLossCost``), keeping every head-specific
setting of the loss it replaces (``reduction``, ``loss_weight``, ``activated``). In a config file::

    _base_ = 'mmdet::fsaf/fsaf_r50_fpn_1x_coco.py'
    custom_imports = dict(imports=['mmdet_asl'], allow_failed_imports=False)
    from mmdet_asl.utils.configs import swap_to_asl
    model = dict(_delete_=True, **swap_to_asl(_base_.model, gamma_pos=1.0, gamma_neg=2.0, clip=0.0)[0])

``_delete_=True`` replaces the base's model by its swapped copy: merging it instead would keep FocalLoss's
``gamma`` in the new loss's arguments.
"""
import copy
import inspect
import threading
from typing import List, Optional, Sequence, Tuple

from mmengine.config import Config

# Keys of the classification losses in MMDetection 3.3 heads ('initial_loss_cls': TOOD's first epochs;
# 'loss_center_heatmap': CenterNet, refused with a reason).
CLS_LOSS_KEYS = ('loss_cls', 'initial_loss_cls', 'loss_center_heatmap')
# The arguments each source loss may carry: any other key would be dropped by the swap, so it is an error.
SOURCE_KEYS = {
    'FocalLoss': {'use_sigmoid', 'gamma', 'alpha', 'reduction', 'loss_weight', 'activated'},
    'QualityFocalLoss': {'use_sigmoid', 'beta', 'reduction', 'loss_weight', 'activated'},
    'VarifocalLoss': {'use_sigmoid', 'alpha', 'gamma', 'iou_weighted', 'reduction', 'loss_weight'},
    'CrossEntropyLoss': {'use_sigmoid', 'use_mask', 'reduction', 'class_weight', 'ignore_index', 'loss_weight',
                         'avg_non_ignore'},
}
ASYMMETRIC_TYPES = ('AsymmetricLoss', 'AsymmetricQualityFocalLoss', 'AsymmetricVarifocalLoss')
# The ASL arguments a matching cost takes from the loss it matches for.
COST_ASL_KEYS = ('gamma_pos', 'gamma_neg', 'clip', 'alpha')


# MMEngine's Config.fromfile is not thread-safe (two threads reading configs at once can fail inside
# pkg_resources' requirement parsing), and the grid tools prepare their runs' configs in worker threads.
_FROMFILE_LOCK = threading.Lock()


def load_config(path: str) -> Config:
    """``Config.fromfile(path)``, one thread at a time (safe in the grid tools' worker threads)."""
    with _FROMFILE_LOCK:
        return Config.fromfile(path)


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
    hooks = load_config(config).to_dict().get('custom_hooks', [])
    kept = [h for h in hooks if h.get('type') != hook['type']]
    position = next((i for i, h in enumerate(hooks) if h.get('type') == hook['type']), len(kept))
    return kept[:position] + [dict(hook)] + kept[position:]


def write_config_with_hook(path: str, config: str, hook: Optional[dict] = None, lines: Sequence[str] = ()) -> str:
    """Write ``path``: a config inheriting ``config``, with ``hook`` among its custom hooks, then ``lines``.

    Args:
        path (str): the config file to write.
        config (str): path of the config it inherits (``_base_``).
        hook (dict, optional): a hook for :func:`custom_hooks_with` (the config's other hooks are kept).
            Default None: the inherited hooks as they are.
        lines (Sequence[str]): further config lines, e.g. ``"model = dict(head=dict(loss=...))"``.

    Returns:
        str: ``path``.
    """
    text = [f'_base_ = {config!r}']
    if hook is not None:
        text.append(f'custom_hooks = {custom_hooks_with(config, hook)!r}')
    with open(path, 'w') as f:
        f.write('\n'.join([*text, *lines]) + '\n')
    return path


def _type_name(cfg: dict) -> str:
    """The registered name of ``cfg['type']``, without a registry scope ('mmdet.FocalLoss' -> 'FocalLoss')."""
    t = cfg.get('type')
    name = t if isinstance(t, str) else getattr(t, '__name__', repr(t))
    return name.split('.')[-1]


def _registered(registry_name: str, type_name: str):
    """The class registered as ``type_name`` in MMDetection's ``registry_name`` (None if there is none)."""
    from mmdet.registry import MODELS, TASK_UTILS

    import mmdet_asl  # noqa: F401  (registers the asymmetric losses and costs)
    return dict(MODELS=MODELS, TASK_UTILS=TASK_UTILS)[registry_name].get(type_name)


def _init_args(registry_name: str, type_name: str) -> Optional[set]:
    """The keyword arguments of a registered class's ``__init__`` (None when it is not registered)."""
    cls = _registered(registry_name, type_name)
    if cls is None:
        return None
    return set(inspect.signature(cls.__init__).parameters) - {'self', 'args', 'kwargs'}


def _refusal(name: str, cfg: dict, roi_head: bool) -> Optional[str]:
    """Why a classification loss has no asymmetric counterpart (None if it has one)."""
    if name == 'CrossEntropyLoss' and not cfg.get('use_sigmoid', False) and not roi_head:
        return ('softmax CrossEntropyLoss (use_sigmoid=False: C + 1 scores, background included) has no '
                'asymmetric counterpart: AsymmetricLoss is a per-class sigmoid loss; keep CrossEntropyLoss (in an '
                'RoI bbox head, roi_head=True maps it to AsymmetricLoss with C sigmoid channels)')
    if name == 'GaussianFocalLoss':
        return ('GaussianFocalLoss (CenterNet, CornerNet) is a heatmap loss on Gaussian-smoothed targets with '
                'positive indices, not a classification loss on labels; keep GaussianFocalLoss')
    if name not in SOURCE_KEYS:
        return (f'{name} has no asymmetric counterpart; the swap maps FocalLoss, QualityFocalLoss, '
                "VarifocalLoss, sigmoid CrossEntropyLoss and an RoI bbox head's softmax CrossEntropyLoss")
    return None


def asymmetric_loss_cfg(loss_cfg: dict, *, roi_head: bool = False, **asl_args) -> dict:
    """The asymmetric counterpart of one focal-family classification loss config.

    ============================================  ==============================  ===============================
    source                                        target                          defaults of the ASL arguments
    ============================================  ==============================  ===============================
    ``FocalLoss``                                 ``AsymmetricLoss``              gamma_pos = gamma_neg = gamma,
                                                                                  alpha kept
    ``FocalLoss(activated=True)`` (TOOD)          ``AsymmetricQualityFocalLoss``  gamma_pos = gamma_neg = gamma;
                                                                                  needs ``alpha=None``
    ``QualityFocalLoss``                          ``AsymmetricQualityFocalLoss``  gamma_pos = gamma_neg = beta
    ``VarifocalLoss`` (VFNet)                     ``AsymmetricVarifocalLoss``     gamma_neg = gamma, alpha kept
                                                                                  (no gamma_pos)
    ``CrossEntropyLoss(use_sigmoid=True)``        ``AsymmetricLoss``              gamma_pos = gamma_neg = 0
    softmax ``CrossEntropyLoss``, RoI bbox head   ``AsymmetricLoss``              gamma_pos = gamma_neg = 0
    ============================================  ==============================  ===============================

    With no ``asl_args`` the result computes the loss it replaces (ASL with gamma_pos = gamma_neg = gamma and
    m = 0 is focal loss, with gamma 0 it is binary cross-entropy, paper Sec. 3), except where noted: TOOD's
    alpha, and an RoI head's softmax (below); ``clip`` (the margin m)
    defaults to 0. ``reduction``, ``loss_weight`` and ``activated`` are always kept: heads depend on them
    (FSAF reduces a ``reduction='none'`` loss itself, YOLOX divides a ``reduction='sum'`` loss by its count).
    A loss that is already asymmetric is returned unchanged (a copy), with ``asl_args`` applied.

    An RoI bbox head's softmax cross-entropy (C + 1 scores, background included) becomes C sigmoid channels:
    ``AsymmetricLoss`` implements the heads' custom classifier contract (background = a negative of every class,
    prediction scores with the background last). That changes the classifier, so it is done only with
    ``roi_head=True`` (``swap_to_asl`` sets it for ``roi_head.bbox_head``).

    Args:
        loss_cfg (dict): the loss config, e.g. ``dict(type='FocalLoss', gamma=2.0, alpha=0.25)``.
        roi_head (bool): the loss is an RoI bbox head's (Faster/Cascade R-CNN). Default False.
        **asl_args: arguments of the target loss, e.g. ``gamma_pos=1.0, gamma_neg=2.0, clip=0.0``;
            ``alpha=None`` removes a FocalLoss alpha.

    Returns:
        dict: the new loss config (a new dict; ``loss_cfg`` is not changed).

    Raises:
        ValueError: the loss has no asymmetric counterpart (softmax cross-entropy, ``GaussianFocalLoss``, any
            other type), or carries a setting the target cannot keep, or ``asl_args`` names an argument the
            target does not take.
    """
    if not isinstance(loss_cfg, dict) or 'type' not in loss_cfg:
        raise ValueError(f'loss_cfg must be a loss config dict with a type, got {loss_cfg!r}')
    src = {k: v for k, v in copy.deepcopy(dict(loss_cfg)).items() if k != '_scope_'}
    name = _type_name(src)
    if name in ASYMMETRIC_TYPES:
        return _with_args(dict(src, type=name), name, asl_args, {})
    reason = _refusal(name, src, roi_head)
    if reason:
        raise ValueError(reason)
    unknown = sorted(set(src) - SOURCE_KEYS[name] - {'type'})
    if unknown:
        raise ValueError(f'{name} argument(s) {unknown} have no counterpart in its asymmetric loss; remove them '
                         'or write the asymmetric loss config by hand')
    if src.get('use_sigmoid', name != 'CrossEntropyLoss') is not True and not (name == 'CrossEntropyLoss' and roi_head):
        raise ValueError(f'{name} with use_sigmoid={src.get("use_sigmoid")!r}: the asymmetric losses are '
                         'sigmoid losses (use_sigmoid=True)')
    kept = {k: src[k] for k in ('reduction', 'loss_weight') if k in src}
    if name == 'CrossEntropyLoss':
        for key, neutral in (('use_mask', False), ('class_weight', None), ('ignore_index', None),
                             ('avg_non_ignore', False)):
            if src.get(key, neutral) != neutral:
                raise ValueError(f'CrossEntropyLoss({key}={src[key]!r}) has no counterpart in AsymmetricLoss; '
                                 f'only {key}={neutral!r} can be swapped')
        # ASL with gamma+ = gamma- = 0 and m = 0 is binary cross-entropy (soft targets too).
        return _with_args(dict(type='AsymmetricLoss', use_sigmoid=True, **kept), 'AsymmetricLoss', asl_args,
                          dict(gamma_pos=0.0, gamma_neg=0.0, clip=0.0, alpha=None))
    if name == 'VarifocalLoss':
        # VFL weights a positive by its IoU target q, with no focusing exponent: there is no gamma+ to set.
        kept['iou_weighted'] = src.get('iou_weighted', True)
        return _with_args(dict(type='AsymmetricVarifocalLoss', use_sigmoid=True, **kept), 'AsymmetricVarifocalLoss',
                          asl_args, dict(gamma_neg=float(src.get('gamma', 2.0)), clip=0.0,
                                         alpha=src.get('alpha', 0.75)))
    exponent = float(src.get('gamma', 2.0) if name == 'FocalLoss' else src.get('beta', 2.0))
    if src.get('activated', False) or name == 'QualityFocalLoss':
        # Probabilities in (TOOD), or QFL's (labels, quality) targets: AsymmetricLoss takes neither.
        if 'activated' in src:
            kept['activated'] = src['activated']
        defaults = dict(gamma_pos=exponent, gamma_neg=exponent, clip=0.0)
        if name == 'FocalLoss':
            defaults['alpha'] = src.get('alpha', 0.25)
        return _with_args(dict(type='AsymmetricQualityFocalLoss', use_sigmoid=True, **kept),
                          'AsymmetricQualityFocalLoss', asl_args, defaults)
    return _with_args(dict(type='AsymmetricLoss', use_sigmoid=True, **kept), 'AsymmetricLoss', asl_args,
                      dict(gamma_pos=exponent, gamma_neg=exponent, clip=0.0, alpha=src.get('alpha', 0.25)))


def _with_args(cfg: dict, target: str, asl_args: dict, defaults: dict) -> dict:
    """``cfg`` with ``defaults`` then ``asl_args``, each checked against the target's ``__init__``."""
    accepted = _init_args('MODELS', target)
    if accepted is None:
        raise ValueError(f'{target} is not registered in MMDetection MODELS; import mmdet_asl first')
    # alpha=None is accepted by every target: it means "no alpha" (dropped where the target has none).
    unknown = sorted(k for k in set(asl_args) - accepted if not (k == 'alpha' and asl_args[k] is None))
    if unknown:
        why = (': it weights a positive by its IoU target, with no focusing exponent'
               if target == 'AsymmetricVarifocalLoss' and 'gamma_pos' in unknown else '')
        raise ValueError(f'{target} takes no argument(s) {unknown}{why} (it takes {sorted(accepted)})')
    args = dict(defaults, **asl_args)
    if 'alpha' not in accepted:
        alpha = args.pop('alpha', None)
        if alpha is not None:
            raise ValueError(f'{target} has no alpha: the source loss has alpha={alpha}; pass alpha=None to drop '
                             'it (positives and negatives then weigh equally)')
    if 'alpha' in accepted and args.get('alpha', 0) is None:
        default = inspect.signature(_registered('MODELS', target).__init__).parameters['alpha'].default
        if default is not None:
            raise ValueError(f'{target} needs a number for alpha (default {default}), got alpha=None')
        args.pop('alpha')  # None is the target's default: no weighting
    cfg.update({k: v for k, v in args.items() if k in accepted})
    return cfg


def _cost_cfg(cost: dict, loss: dict) -> dict:
    """``AsymmetricFocalLossCost`` for a ``FocalLossCost``, with the ASL arguments of the loss it matches for.

    The matcher then ranks a query by what the loss will charge it (as ``FocalLossCost`` does for ``FocalLoss``).
    A loss without alpha weighs positives and negatives by 1: the cost takes alpha = 0.5 and twice its weight,
    which is the same cost (alpha = 0.5 halves both terms).
    """
    if _registered('TASK_UTILS', 'AsymmetricFocalLossCost') is None:
        raise ValueError('AsymmetricFocalLossCost is not registered in MMDetection TASK_UTILS; import mmdet_asl '
                         'first')
    unknown = sorted(set(cost) - {'type', 'alpha', 'gamma', 'eps', 'binary_input', 'weight', '_scope_'})
    if unknown:
        raise ValueError(f'FocalLossCost argument(s) {unknown} have no counterpart in AsymmetricFocalLossCost')
    if loss['type'] not in ('AsymmetricLoss', 'AsymmetricQualityFocalLoss'):
        raise ValueError(f'FocalLossCost matches for a {loss["type"]}: no asymmetric matching cost for it')
    new = dict(type='AsymmetricFocalLossCost', gamma_pos=loss.get('gamma_pos', 0.0),
               gamma_neg=loss.get('gamma_neg', 4.0 if loss['type'] == 'AsymmetricLoss' else 2.0),
               clip=loss.get('clip', 0.05 if loss['type'] == 'AsymmetricLoss' else 0.0))
    new.update({k: cost[k] for k in ('eps', 'binary_input') if k in cost})
    weight = cost.get('weight', 1.0)
    if loss.get('alpha') is None:
        new.update(alpha=0.5, weight=2 * weight)
    else:
        new.update(alpha=loss['alpha'], weight=weight)
    return new


def _walk_losses(node, path: str):
    """Yield (container, key, path) of every classification-loss config under ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            sub = f'{path}.{key}' if path else key
            if key in CLS_LOSS_KEYS and isinstance(value, dict) and 'type' in value:
                yield node, key, sub
            elif key != 'train_cfg' and isinstance(value, (dict, list, tuple)):
                yield from _walk_losses(value, sub)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _walk_losses(value, f'{path}[{i}]')


def _walk_costs(node, path: str):
    """Yield (container, key, path) of every ``FocalLossCost`` config under ``node``."""
    if isinstance(node, dict):
        items = [(key, value, f'{path}.{key}') for key, value in node.items()]
    elif isinstance(node, (list, tuple)):
        items = [(i, value, f'{path}[{i}]') for i, value in enumerate(node)]
    else:
        return
    for key, value, sub in items:
        if isinstance(value, dict) and 'type' in value and _type_name(value) == 'FocalLossCost':
            yield node, key, sub
        else:
            yield from _walk_costs(value, sub)


# RoI bbox heads whose classifier is always C + 1 softmax channels: they do not ask the loss for its channel
# count (MMDetection's custom_cls_channels contract), so AsymmetricLoss would train the background as a class.
SOFTMAX_ONLY_ROI_HEADS = ('DoubleConvFCBBoxHead', 'SABLHead', 'MultiInstanceBBoxHead')


def _selected(path: str, only: Optional[Sequence[str]]) -> bool:
    return only is None or any(path == p or path.startswith(p + '.') or path.startswith(p + '[') for p in only)


def swap_to_asl(cfg, only: Optional[Sequence[str]] = None, **asl_args) -> Tuple[object, List[str]]:
    """Swap every classification loss of a detector config for its asymmetric counterpart.

    Walks the model (``bbox_head``, ``rpn_head``, ``roi_head.bbox_head`` and its Cascade list, DETR heads, TOOD's
    ``initial_loss_cls``), maps each loss with :func:`asymmetric_loss_cfg` (``roi_head=True`` under
    ``roi_head.bbox_head``), and turns each ``FocalLossCost`` of
    a ``train_cfg`` matcher into ``AsymmetricFocalLossCost`` with the ASL arguments of the swapped loss (so
    that predictions are matched by the loss they are trained with).

    Args:
        cfg (Config | dict): a whole config (with ``model``) or a model config.
        only (Sequence[str], optional): dotted paths in the model to swap, e.g. ``['rpn_head']`` for Faster
            R-CNN's RPN alone; the other losses are left as they are. Default: all.
        **asl_args: passed to :func:`asymmetric_loss_cfg` for every loss.

    Returns:
        tuple: the swapped copy of ``cfg`` (``cfg`` is not changed) and the list of changes, one
        ``'<path>: <old type> -> <new type>'`` string each (paths relative to the model).

    Raises:
        ValueError: a selected loss has no counterpart (the message lists each path and why), or ``cfg``
            holds no classification loss to swap.
    """
    new = copy.deepcopy(cfg)
    model = new['model'] if 'model' in new and 'type' not in new else new
    if not isinstance(model, dict):
        raise ValueError(f'cfg must be a config with a model dict, or a model dict, got {type(cfg).__name__}')
    changes, refused, swapped = [], [], {}
    for container, key, path in list(_walk_losses(model, '')):
        if not _selected(path, only):
            continue
        old = container[key]
        if path.startswith('roi_head.bbox_head') and _type_name(container) in SOFTMAX_ONLY_ROI_HEADS:
            refused.append((path, f'{_type_name(container)} always builds C + 1 softmax classifier channels (it '
                                  'does not take the loss\'s custom_cls_channels), so an asymmetric loss would '
                                  'train the background as a class; keep its CrossEntropyLoss'))
            continue
        try:
            container[key] = asymmetric_loss_cfg(old, roi_head=path.startswith('roi_head.bbox_head'), **asl_args)
        except ValueError as e:
            refused.append((path, str(e)))
            continue
        swapped[path] = container[key]
        if _type_name(old) != container[key]['type'] or dict(old) != dict(container[key]):
            changes.append(f'{path}: {_type_name(old)} -> {container[key]["type"]}')
    if refused:
        raise ValueError(_refusal_message(model, refused, list(swapped) if only is None else []))
    if not swapped:
        raise ValueError(f'no classification loss ({", ".join(CLS_LOSS_KEYS)}) found in the model'
                         + (f' under {list(only)}' if only is not None else ''))
    costs = [c for train_cfg_path, train_cfg in _train_cfgs(model) for c in _walk_costs(train_cfg, train_cfg_path)]
    if costs:
        loss = _matched_loss(swapped, [path for _, _, path in costs])
        for container, key, path in costs:
            container[key] = _cost_cfg(container[key], loss)
            changes.append(f'{path}: FocalLossCost -> AsymmetricFocalLossCost')
    return new, changes


def _refusal_message(model: dict, refused: list, others: list) -> str:
    """One message for every refused loss: paths with the same reason together, then what to do instead."""
    reasons = {}
    for path, reason in refused:
        reasons.setdefault(reason, []).append(path)
    text = 'no asymmetric swap for ' + ' | '.join(f'{", ".join(paths)}: {reason}' for reason, paths in
                                                   reasons.items())
    if others:
        text += f'; to swap only the others, pass only={others}'
    if _type_name(model) == 'DETR':
        text += ('; the sigmoid DETR models (DeformableDETR, ConditionalDETR, DABDETR, DINO) use FocalLoss and '
                 'take AsymmetricLoss')
    return text


def _matched_loss(swapped: dict, cost_paths: list) -> dict:
    """The swapped loss whose ASL arguments the matching costs take: all swapped losses must agree on them."""
    args = {path: {k: loss.get(k) for k in COST_ASL_KEYS} for path, loss in swapped.items()}
    distinct = {tuple(sorted(a.items())) for a in args.values()}
    if len(distinct) > 1:
        raise ValueError(f'{cost_paths}: FocalLossCost becomes AsymmetricFocalLossCost with the arguments of the '
                         f'swapped loss, but the swapped losses differ: {args}')
    return next(iter(swapped.values()))


def _train_cfgs(model: dict):
    """(path, train_cfg) of the model's ``train_cfg`` dicts (the detector's, and any head's)."""
    found = []

    def visit(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                sub = f'{path}.{key}' if path else key
                if key == 'train_cfg' and isinstance(value, (dict, list)):
                    found.append((sub, value))
                elif isinstance(value, (dict, list, tuple)):
                    visit(value, sub)
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                visit(value, f'{path}[{i}]')

    visit(model, '')
    return found
