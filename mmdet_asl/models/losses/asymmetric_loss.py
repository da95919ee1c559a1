"""``AsymmetricLoss`` registered in MMDetection's ``MODELS``: a drop-in for ``FocalLoss``.

Detection configs (FCOS, ATSS, RetinaNet, ... dense heads)::

    custom_imports = dict(imports=['mmdet_asl'], allow_failed_imports=False)
    model = dict(bbox_head=dict(loss_cls=dict(
        type='AsymmetricLoss', use_sigmoid=True, gamma_pos=1.0, gamma_neg=2.0, clip=0.0, loss_weight=1.0)))

MMPretrain configs already have their own ``AsymmetricLoss`` in MMPretrain's registry; ours is reached
across scopes, without a clash, as ``type='mmdet.AsymmetricLoss'``.
"""
from typing import Optional

import torch
from torch import Tensor, nn

from mmdet.models.losses import accuracy
from mmdet.registry import MODELS

from ...ops.asl import ASLParams, ExecOptions, apply_asymmetric_loss, probability_gap
from ...ops.asl.checks import check_avg_factor, check_bool, check_options, check_params, check_real
from .utils import Float64BuffersMixin, check_reduction, check_use_sigmoid, refuse_softmax_dense_head, resolve_reduction


@MODELS.register_module()
class AsymmetricLoss(Float64BuffersMixin, nn.Module):
    """Asymmetric Loss (Ben-Baruch et al., ICCV 2021, Eq. 7), MMDetection ``FocalLoss`` interface.

    Args:
        use_sigmoid (bool, optional): True; write it in the config, where dense heads read it to size
            ``cls_out_channels`` (without it they build C + 1 softmax channels: refused when the head builds the loss).
        gamma_pos (float): gamma+, focusing of positives. Default 0.
        gamma_neg (float): gamma-, focusing of negatives. Default 4.
        clip (float): probability margin m in [0, 1) (Eq. 5). Default 0.05.
        eps (float): floor of the probabilities inside the logs, in [0, 1). Default 0: no floor, every
            element keeps its gradient (as FocalLoss). 1e-8 reproduces the official implementation, whose
            floor zeroes the gradient of a positive with p < 1e-8 (and, with m = 0, of a negative with
            p > 1 - 1e-8).
        alpha (float, optional): static weighting, alpha for positives and 1 - alpha for negatives
            (FocalLoss's alpha; the paper's "FL + linear weighting"). Default None (no weighting).
        focusing_grad (str): 'full' (gradient through the focusing weight, Eq. 8) or 'detached'.
        reduction (str): 'none' | 'mean' | 'sum'.
        loss_weight (float): multiplier of the loss (finite, >= 0).
        probe (bool): collect the probability-gap sums (Eq. 9-10) in training, in the same pass as the
            loss. ``ProbabilityGapHook`` turns this on by itself; set it to use the sums yourself.
        probe_per_class (bool): collect those sums per class, (C, 4) instead of (4,) (the per-class
            adaptive asymmetry). Default False.
        impl (str): 'eager' (default: plain PyTorch, no warm-up) or 'compiled' (the kernel fused by
            ``torch.compile``, compiled once per configuration). ``MMDET_ASL_COMPILE=0/1`` in the
            environment overrides it.
        validate (bool): check the input values at every call (label range, targets in [0, 1], finite
            logits, finite non-negative weights and avg_factor). Costs one host synchronisation per call;
            turn off for a validated training loop. Default True.
        activated (bool): must be False: ASL takes logits. Probabilities (TOOD's ``activated=True``) and the
            tuple targets (labels, scores) of QualityFocalLoss heads are refused, naming
            ``AsymmetricQualityFocalLoss``; so are GaussianFocalLoss's ``pos_inds``/``pos_labels`` (CenterNet).

    In an RoI bbox head (Faster / Cascade R-CNN's ``Shared2FCBBoxHead``) the loss implements MMDetection's
    custom classifier contract (``get_cls_channels``, ``get_activation``, ``get_accuracy``, as SeesawLoss): the
    classifier gets C sigmoid channels, the background label C is a negative of every class, and prediction
    gets C + 1 scores with the background last (prod_c (1 - p_c)).

    gamma- (a float, or a (C,) tensor once a per-class value was set) lives in ``gamma_neg_buffer``, which
    follows the module's device but stays float64 under ``.half()``, as do the probe sums. It is not part
    of the state dict: the config's value is the model's, and ``ProbabilityGapHook`` keeps an adapted gamma-
    in its own checkpoint entry (restored on ``--resume``; a ``load_from`` fine-tune starts from the config
    unless the hook is told otherwise).

    ``forward(pred, target, weight=None, avg_factor=None, reduction_override=None)`` takes ``pred``
    (N, C) logits and ``target`` as (N,) class indices with background = C (MMDetection's convention)
    or (N, C) dense targets in [0, 1]; ``weight`` (N,), (N, C) or (N*C,). Reduction follows
    ``mmdet.models.losses.weight_reduce_loss``: mean = sum / (avg_factor + eps) with ``avg_factor``,
    element mean without; 'sum' with ``avg_factor`` is an error.
    """

    def __init__(self,
                 use_sigmoid: Optional[bool] = None,
                 gamma_pos: float = 0.0,
                 gamma_neg: float = 4.0,
                 clip: float = 0.05,
                 eps: float = 0.0,
                 alpha: Optional[float] = None,
                 focusing_grad: str = 'full',
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 probe: bool = False,
                 probe_per_class: bool = False,
                 impl: str = 'eager',
                 validate: bool = True,
                 activated: bool = False):
        super().__init__()
        if not check_use_sigmoid('AsymmetricLoss', use_sigmoid):
            refuse_softmax_dense_head('AsymmetricLoss')
        if activated is not False:
            # Probabilities (TOOD's head) would be read as logits: sigmoid(p) in (0.5, 0.73) trains nothing sensible.
            raise ValueError(f'AsymmetricLoss takes logits; activated={activated!r} (probabilities as input, as in '
                             "TOOD's head) is not supported: use type='AsymmetricQualityFocalLoss' with "
                             'activated=True')
        if isinstance(gamma_neg, Tensor):
            raise TypeError('gamma_neg must be a real number in the config (an adaptive gamma- is set '
                            'through the gamma_neg attribute)')
        self.params = check_params(ASLParams(gamma_pos, gamma_neg, clip, eps, alpha, focusing_grad))
        self.options = check_options(ExecOptions(impl, validate))
        check_reduction(reduction)
        self.use_sigmoid = True  # read by the heads that size their classifier from the built loss (DETR's)
        self.reduction = reduction
        self.loss_weight = check_real('loss_weight', loss_weight, low=0.0)
        self.probe = check_bool('probe', probe)
        self.probe_per_class = check_bool('probe_per_class', probe_per_class)
        self.register_buffer('gamma_neg_buffer', torch.tensor(self.params.gamma_neg, dtype=torch.float64),
                             persistent=False)
        self.register_buffer('clip_buffer', torch.tensor(self.params.clip, dtype=torch.float64), persistent=False)
        # Set by ProbabilityGapHook when it adapts m (or by a per-class m): the kernel then takes the buffer.
        self.clip_dynamic = False
        # Set by ProbabilityGapHook when it adapts gamma-: the kernel then takes the buffer itself, so a
        # new value recompiles nothing; otherwise the float in ``params`` (a constant of the kernel).
        self.gamma_neg_dynamic = False
        # Probability-gap sums since the last ``pop_probe_sums``; per iteration, so not checkpointed.
        self.register_buffer('probe_sums', torch.zeros(4, dtype=torch.float64), persistent=False)
        # C, once an RoI bbox head asked for its classifier's channels (see ``get_cls_channels``).
        self.roi_num_classes: Optional[int] = None

    # MMDetection's custom classifier contract, as SeesawLoss implements it. RoI bbox heads (BBoxHead,
    # ConvFCBBoxHead: Faster/Cascade R-CNN) otherwise build a softmax classifier of C + 1 channels whatever
    # use_sigmoid says; with it they ask ``get_cls_channels`` and get C sigmoid channels, their labels' background
    # index C is a negative of every class, and ``get_activation`` hands their prediction the C + 1 scores
    # (background last) that ``multiclass_nms`` expects. Dense heads never call ``get_cls_channels``: for them
    # ``get_activation`` is the sigmoid their ``use_sigmoid`` path applies, and no accuracy is added.
    custom_cls_channels = True

    @property
    def custom_activation(self) -> bool:
        return self.roi_num_classes is not None

    @property
    def custom_accuracy(self) -> bool:
        return self.roi_num_classes is not None

    def get_cls_channels(self, num_classes: int) -> int:
        """Classifier channels of an RoI bbox head: C sigmoid outputs, no background channel."""
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'num_classes of the bbox head must be a positive integer, got {num_classes!r}')
        self.roi_num_classes = num_classes
        return num_classes

    def get_activation(self, cls_score: Tensor) -> Tensor:
        """Scores of the classifier's logits: sigmoid per class; for an RoI head, (N, C + 1) with the background
        last, the probability that no class is present, prod_c (1 - p_c) (independent sigmoids)."""
        scores = cls_score.sigmoid()
        if self.roi_num_classes is None:
            return scores
        if cls_score.shape[-1] != self.roi_num_classes:
            raise ValueError(f'cls_score must have {self.roi_num_classes} channels (the bbox head\'s classes), got '
                             f'shape {tuple(cls_score.shape)}')
        return torch.cat([scores, torch.prod(1 - scores, dim=-1, keepdim=True)], dim=-1)

    def get_accuracy(self, cls_score: Tensor, labels: Tensor) -> dict:
        """``acc`` as the softmax head logs it: argmax of the C + 1 scores of ``get_activation`` against the
        labels (background = C)."""
        return dict(acc=accuracy(self.get_activation(cls_score), labels))

    # Read-only views of the hyper-parameters, under FocalLoss-like names.
    gamma_pos = property(lambda self: self.params.gamma_pos)
    eps = property(lambda self: self.params.eps)
    alpha = property(lambda self: self.params.alpha)
    focusing_grad = property(lambda self: self.params.focusing_grad)

    @property
    def gamma_neg(self):
        """gamma-: a float, or the (C,) tensor of a per-class gamma- once one was set."""
        return self.gamma_neg_buffer.clone() if self.gamma_neg_buffer.dim() else self.params.gamma_neg

    @gamma_neg.setter
    def gamma_neg(self, value) -> None:
        if isinstance(value, Tensor) and value.dim() > 1:
            raise ValueError(f'gamma_neg must be a number, a 0-dim tensor or a (C,) tensor (one per class), got '
                             f'a tensor of shape {tuple(value.shape)}')
        if isinstance(value, Tensor) and value.dim() == 1:
            if not value.is_floating_point() or not bool(torch.isfinite(value).all() & (value >= 0).all()):
                raise ValueError(f'gamma_neg per class must be a finite floating tensor >= 0, got {value}')
            # A per-class gamma- always reaches the kernel as a tensor (no recompilation when it changes).
            self.gamma_neg_buffer = value.detach().to(self.gamma_neg_buffer.device, torch.float64).clone()
            self.gamma_neg_dynamic = True
            return
        value = check_real('gamma_neg', float(value) if isinstance(value, Tensor) else value, low=0.0)
        self.gamma_neg_buffer = torch.tensor(value, dtype=torch.float64, device=self.gamma_neg_buffer.device)
        self.params = self.params._replace(gamma_neg=value)

    @property
    def clip(self):
        """The margin m: a float, or the (C,) tensor of a per-class m once one was set."""
        return self.clip_buffer.clone() if self.clip_buffer.dim() else self.params.clip

    @clip.setter
    def clip(self, value) -> None:
        if isinstance(value, Tensor) and value.dim() > 1:
            raise ValueError(f'clip (the margin m) must be a number, a 0-dim tensor or a (C,) tensor (one per '
                             f'class), got a tensor of shape {tuple(value.shape)}')
        if isinstance(value, Tensor) and value.dim() == 1:
            if not value.is_floating_point() or not bool(((value >= 0) & (value < 1)).all()):
                raise ValueError(f'clip (the margin m) per class must be a floating tensor in [0, 1), got {value}')
            self.clip_buffer = value.detach().to(self.clip_buffer.device, torch.float64).clone()
            self.clip_dynamic = True
            return
        value = check_real('clip (the probability margin m)', float(value) if isinstance(value, Tensor) else value,
                           0.0, 1.0, high_open=True)
        self.clip_buffer = torch.tensor(value, dtype=torch.float64, device=self.clip_buffer.device)
        self.params = self.params._replace(clip=value)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Checkpoints written when gamma- was model state carry it: it is not loaded (see the class docstring).
        state_dict.pop(prefix + 'gamma_neg_buffer', None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # Kept float64 whatever the module's dtype: after .half(), gamma- would be rounded to 3 digits, small
    # adaptive steps would vanish, and the slot counts of the probe would overflow at 65504.
    _FLOAT64_BUFFERS = ('gamma_neg_buffer', 'clip_buffer', 'probe_sums')

    def pop_probe_sums(self) -> Tensor:
        """Return the probability-gap sums ((4,), or (C, 4) with ``probe_per_class``) collected since the
        last call, and reset them."""
        sums = self.probe_sums.clone()
        self.probe_sums.zero_()
        return sums

    def probability_gap(self):
        """(p_t+, p_t-, Delta p) of the sums collected so far, over all classes (without resetting them)."""
        return probability_gap(self.probe_sums.reshape(-1, 4).sum(0))

    def extra_repr(self) -> str:
        p = self.params
        return (f'gamma_pos={p.gamma_pos}, gamma_neg={p.gamma_neg}, clip={p.clip}, eps={p.eps}, alpha={p.alpha}, '
                f'focusing_grad={p.focusing_grad!r}, reduction={self.reduction!r}, loss_weight={self.loss_weight}, '
                f'impl={self.options.impl!r}, validate={self.options.validate}')

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> Tensor:
        self._refuse_foreign_call(pred, target, kwargs)
        reduction = resolve_reduction(reduction_override, self.reduction)
        if reduction == 'sum' and avg_factor is not None:
            raise ValueError('avg_factor can not be used with reduction="sum"')
        avg_factor = check_avg_factor(avg_factor)
        probe = self.probe and self.training
        # loss_weight and the mean's divisor are folded into the fused pass (``scale``), so that backward
        # receives the saved gradient as is. avg_factor is a normaliser: no gradient flows into it.
        scale = self.loss_weight
        if reduction == 'mean' and avg_factor is not None:
            # As mmdet's weight_reduce_loss: eps keeps avg_factor = 0 from dividing by zero.
            scale = self.loss_weight / (avg_factor + torch.finfo(torch.float32).eps)
            if isinstance(avg_factor, Tensor) and self.options.validate:
                # avg_factor in (-eps, 0) would still give a positive scale: a NaN scale is refused by the
                # value check, in the same host synchronisation as the other values.
                scale = torch.where(avg_factor >= 0, scale, torch.nan)
        loss = apply_asymmetric_loss(
            pred, target, weight, self.params, self.options,
            gamma_neg=self.gamma_neg_buffer if self.gamma_neg_dynamic else None, reduce=reduction != 'none',
            scale=scale, element_mean=reduction == 'mean' and avg_factor is None, return_probe=probe,
            probe_per_class=self.probe_per_class, clip=self.clip_buffer if self.clip_dynamic else None)
        if probe:
            loss, sums = loss
            if self.probe_sums.shape != sums.shape:  # switched between global and per-class sums
                self.probe_sums = torch.zeros_like(sums, dtype=torch.float64, device=self.probe_sums.device)
            self.probe_sums += sums.to(self.probe_sums)
        return loss

    def _refuse_foreign_call(self, pred, target, kwargs: dict) -> None:
        """Refuse the calls of heads whose classification loss is not a FocalLoss: their targets would be read
        as ASL's and trained silently wrong."""
        if isinstance(target, (tuple, list)):
            raise TypeError('AsymmetricLoss got a tuple target (labels, quality scores), the form of the heads '
                            "built for QualityFocalLoss (GFL, RTMDet, TOOD, DETR's QFL branch): use "
                            "type='AsymmetricQualityFocalLoss' (ASL's gamma- and margin in QualityFocalLoss)")
        if 'pos_inds' in kwargs or 'pos_labels' in kwargs:
            raise TypeError(f'AsymmetricLoss got {sorted(kwargs)}: the head calls its loss as GaussianFocalLoss '
                            "(CenterNet's Gaussian heatmap targets with pos_inds/pos_labels); GaussianFocalLoss "
                            'is not supported by AsymmetricLoss: keep GaussianFocalLoss for this head')
        if kwargs:
            raise TypeError(f'AsymmetricLoss.forward got unexpected keyword argument(s) {sorted(kwargs)}: it '
                            'takes (pred, target, weight, avg_factor, reduction_override) as FocalLoss; the head '
                            'expects another loss')
        if self.roi_num_classes is not None and isinstance(pred, Tensor) and pred.dim() == 2 \
                and pred.shape[1] != self.roi_num_classes:
            raise ValueError(f'pred has {pred.shape[1]} channels, but the RoI bbox head was built with '
                             f'{self.roi_num_classes} sigmoid channels (get_cls_channels)')
        if isinstance(pred, Tensor) and pred.dim() == 4:
            raise ValueError(f'AsymmetricLoss takes (N, C) logits, got a {tuple(pred.shape)} map: (B, C, H, W) '
                             "heatmaps with Gaussian targets (CenterNet's loss_center_heatmap, GaussianFocalLoss) "
                             'are not supported')
