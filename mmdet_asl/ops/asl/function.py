"""The ASL as a PyTorch operator: a custom op with an analytic backward, eager or compiled.

``torch.ops.mmdet_asl.asymmetric_loss`` is registered with ``torch.library.custom_op``, a fake
(shape-only) implementation and an autograd formula, so a model that calls the loss can itself be wrapped
in ``torch.compile`` (MMEngine's ``compile=True``): the outer graph treats the loss as one opaque
operator, and the input checks, which read values from the device, run inside it at run time.

``torch.ops.mmdet_asl.quality_focal_loss`` is the same for the asymmetric quality focal loss
(:func:`~mmdet_asl.ops.asl.quality.quality_loss_and_grad`).

Inside the operator, :func:`~mmdet_asl.ops.asl.kernel.loss_and_grad` runs eagerly (``impl='eager'``, no
warm-up) or through ``torch.compile`` (``impl='compiled'``: one fused loop, compiled once per loss
configuration). Only a failure of the compiler selects the eager kernel instead, with a warning; errors
at run time propagate. No global setting of torch is changed.
"""
import types
import warnings
from typing import Optional, Tuple

import torch
from torch import Tensor
from torch._dynamo.exc import BackendCompilerFailed, InternalTorchDynamoError, Unsupported

from .checks import (
    check_gamma_neg,
    check_layout,
    check_options,
    check_params,
    check_per_class_length,
    check_real,
    check_values,
)
from .kernel import KernelOutputs, loss_and_grad
from .params import IMPL_OVERRIDE, IMPLS, ASLParams, ExecOptions
from .quality import quality_loss_and_grad

# Failures of the compiler itself (no C++ compiler, an unsupported platform or construct), as opposed to
# errors of the computation, which propagate.
COMPILER_ERRORS = (BackendCompilerFailed, InternalTorchDynamoError, Unsupported)
# Inductor materialises an intermediate as an (N, C) buffer once its expression exceeds 30 ops or 4 reads;
# the kernel's are longer, and a materialised intermediate costs a round trip to memory. torch.compile applies
# these options by patching torch._inductor.config for the duration of the kernel's compile only, inside
# dynamo's compile lock, which every other compile (forward, or a lazily compiled backward) also takes: no
# other compile sees them, and the config is back to its values when the kernel is compiled.
INDUCTOR_OPTIONS = {'realize_opcount_threshold': 1000, 'realize_reads_threshold': 100}

_compiled = {}
_compiler_failure: Optional[str] = None


def _compiled_kernel(params: ASLParams, outputs: KernelOutputs, kernel=loss_and_grad):
    """The compiled ``kernel`` of one loss configuration. Each gets a copy of the kernel with its own code
    object: dynamo keeps its compiled graphs, its recompile limit and its record of which arguments
    changed per code object, so the constants of one configuration (gammas, m, eps) stay constants of
    its graph (pow(x, 4.0) becomes products) instead of becoming symbolic after another configuration ran."""
    key = (params, outputs) if kernel is loss_and_grad else (kernel.__name__, params, outputs)
    if key not in _compiled:
        code = kernel.__code__
        fn = types.FunctionType(code.replace(co_name=f'{code.co_name}_{len(_compiled)}'), kernel.__globals__,
                                kernel.__name__, kernel.__defaults__, kernel.__closure__)
        _compiled[key] = torch.compile(fn, fullgraph=True, options=INDUCTOR_OPTIONS)
    return _compiled[key]


def _run(kernel, args: tuple, params: ASLParams, outputs: KernelOutputs, impl: str):
    """``kernel(*args)`` (``args`` hold ``params`` and ``outputs``) eagerly or compiled; a compiler failure warns
    once and runs it eagerly."""
    global _compiler_failure
    if impl == 'compiled' and _compiler_failure is None:
        try:
            return _compiled_kernel(params, outputs, kernel)(*args)
        except COMPILER_ERRORS as exc:
            _compiler_failure = f'{type(exc).__name__}: {exc}'.split('\n')[0]
            warnings.warn(f'mmdet_asl: torch.compile failed to compile the ASL kernel ({_compiler_failure}); '
                          "the eager kernel computes the loss instead (impl='eager' skips compiling).")
    return kernel(*args)


def _scale_input(scale, impl: str, like: Tensor):
    """A changing Python float would make a compiled graph symbolic in it; a 0-dim tensor is an input."""
    if impl == 'compiled' and _compiler_failure is None and scale is not None and not isinstance(scale, Tensor):
        return like.new_full((), scale)
    return scale


def run_kernel(z, target, weight, gamma_neg, scale, params: ASLParams, outputs: KernelOutputs, impl: str,
               clip: Optional[Tensor] = None):
    """``loss_and_grad`` eagerly or compiled; a compiler failure warns once and runs it eagerly."""
    return _run(loss_and_grad, (z, target, weight, gamma_neg, _scale_input(scale, impl, z), params, outputs, clip),
                params, outputs, impl)


@torch.library.custom_op('mmdet_asl::asymmetric_loss', mutates_args=())
def asymmetric_loss_op(logits: Tensor, target: Tensor, weight: Optional[Tensor], gamma_neg: Optional[Tensor],
                       clip_tensor: Optional[Tensor], scale: Optional[Tensor], scale_value: float,
                       element_mean: bool, gamma_pos: float, gamma_neg_value: float, clip: float, eps: float,
                       alpha: Optional[float], focusing_grad: str, reduce: bool, need_grad: bool, probe: bool,
                       probe_per_class: bool, impl: str, validate: bool) -> Tuple[Tensor, Tensor, Tensor]:
    """(loss, dloss/dlogits, probe sums) of Eq. 7; empty tensors stand for outputs not asked for.

    The loss and gradient are multiplied by ``scale`` (a 0-dim tensor, e.g. loss_weight / avg_factor) or
    ``scale_value``, further divided by the number of elements with ``element_mean``.
    """
    dtype = _compute_dtype(logits)
    is_index = target.dim() == 1
    with torch.autocast(device_type=logits.device.type, enabled=False):
        if validate:
            check_values(logits, target, weight, scale, is_index)
        if element_mean:
            scale_value = scale_value / max(logits.numel(), 1)
        scale = scale.to(dtype) if scale is not None else (None if scale_value == 1.0 else scale_value)
        params = ASLParams(gamma_pos, gamma_neg_value, clip, eps, alpha, focusing_grad)
        loss, grad, sums = run_kernel(
            logits.to(dtype), target if is_index else target.to(dtype), None if weight is None else weight.to(dtype),
            None if gamma_neg is None else gamma_neg.to(dtype), scale, params,
            KernelOutputs(reduce, need_grad, probe, probe_per_class),
            impl, None if clip_tensor is None else clip_tensor.to(dtype))
    return (loss, logits.new_empty(0, dtype=dtype) if grad is None else grad,
            logits.new_zeros(0, dtype=torch.float64) if sums is None else sums)


@asymmetric_loss_op.register_fake
def _(logits, target, weight, gamma_neg, clip_tensor, scale, scale_value, element_mean, gamma_pos, gamma_neg_value,
      clip, eps, alpha, focusing_grad, reduce, need_grad, probe, probe_per_class, impl, validate):
    dtype = _compute_dtype(logits)
    return (logits.new_empty(() if reduce else logits.shape, dtype=dtype),
            logits.new_empty(logits.shape if need_grad else (0, ), dtype=dtype),
            logits.new_empty(((logits.shape[1], 4) if probe_per_class else (4, )) if probe else (0, ),
                             dtype=torch.float64))


def _setup_context(ctx, inputs, output):
    ctx.logits_dtype = inputs[0].dtype
    ctx.save_for_backward(output[1])
    ctx.mark_non_differentiable(output[1], output[2])


def _backward(ctx, grad_loss, unused_grad, unused_sums):
    grad, = ctx.saved_tensors
    # A summed loss whose scale was folded into the kernel reaches backward with grad_loss == 1: the saved
    # gradient is handed over as is (no (N, C) multiply, no allocation). Checked only for a plain CPU
    # scalar, where reading it is no device synchronisation and no tracing is under way.
    if type(grad_loss) is Tensor and grad_loss.dim() == 0 and grad_loss.device.type == 'cpu' \
            and grad.dtype == ctx.logits_dtype and not torch.compiler.is_compiling() and grad_loss.item() == 1.0:
        return (grad, ) + (None, ) * 19
    return ((grad * grad_loss).to(ctx.logits_dtype), ) + (None, ) * 19


asymmetric_loss_op.register_autograd(_backward, setup_context=_setup_context)


def _compute_dtype(logits: Tensor) -> torch.dtype:
    """float32 for half, bfloat16 and float32 logits (eps = 1e-8 underflows in half), float64 stays."""
    return torch.float64 if logits.dtype == torch.float64 else torch.float32


def apply_asymmetric_loss(logits: Tensor,
                          target: Tensor,
                          weight: Optional[Tensor] = None,
                          params: ASLParams = ASLParams(),
                          options: ExecOptions = ExecOptions(),
                          *,
                          gamma_neg: Optional[Tensor] = None,
                          reduce: bool = False,
                          scale=None,
                          element_mean: bool = False,
                          return_probe: bool = False,
                          probe_per_class: bool = False,
                          clip: Optional[Tensor] = None):
    """Asymmetric loss (Eq. 7) with its analytic gradient.

    Args:
        logits: (N, C) logits, any floating dtype.
        target: (N,) integer labels in [0, C] with C = background, or (N, C) targets in [0, 1].
        weight: optional (N,), (N, C) or (N * C,) element weights (no gradient flows to them).
        params: the hyper-parameters (:class:`ASLParams`); checked here unless ``options.validate`` is off
            (:class:`~mmdet_asl.models.losses.AsymmetricLoss` checks them once, when it is built).
        options: :class:`ExecOptions`: ``impl`` ('eager' | 'compiled') and ``validate``.
        gamma_neg: optional 0-dim or (C,) tensor that replaces ``params.gamma_neg`` (an adaptive gamma-
            changes without recompiling anything).
        reduce: return the weighted sum instead of the element-wise loss.
        scale: optional float or 0-dim tensor multiplying loss and gradient (e.g. loss_weight / avg_factor);
            folded into the pass, so backward has nothing to multiply.
        element_mean: further divide by the number of elements (a mean without avg_factor).
        return_probe: also return the probability-gap sums of Eq. 9-10 from the same pass.
        probe_per_class: those sums per class, (C, 4), instead of (4,).
        clip: optional 0-dim or (C,) tensor in [0, 1) that replaces ``params.clip`` (an adaptive margin m;
            the caller checks its values).

    Returns:
        The element-wise (N, C) loss, or its sum with ``reduce``: float32 for half, bfloat16 and float32
        logits, float64 for float64 logits. With ``return_probe``: ``(loss, probe_sums)``.
    """
    if options.validate:
        params, options = check_params(params), check_options(options)
    if isinstance(params.gamma_neg, Tensor):
        gamma_neg, params = params.gamma_neg, params._replace(gamma_neg=0.0)
    impl = IMPL_OVERRIDE or options.impl
    target, weight, _ = check_layout(logits, target, weight)
    if gamma_neg is not None:
        check_gamma_neg(gamma_neg)
        gamma_neg = gamma_neg.detach()
    if clip is not None:
        if not isinstance(clip, Tensor) or not clip.is_floating_point() or clip.dim() > 1:
            raise TypeError(f'clip as a tensor must be a floating 0-dim or (C,) tensor, got {clip!r}')
        clip = clip.detach()
    check_per_class_length('gamma_neg', gamma_neg, logits.shape[1])
    check_per_class_length('clip (the probability margin m)', clip, logits.shape[1])
    if isinstance(scale, Tensor):
        scale, scale_value = scale.detach().reshape(()).to(logits.device), 1.0
    else:
        scale, scale_value = None, 1.0 if scale is None else check_real('scale', scale)
    dtype = _compute_dtype(logits)
    if logits.numel() == 0:
        # An empty batch: zero (or an empty tensor), still connected to the graph, so that backward gives
        # an empty gradient rather than an error.
        out = logits.to(dtype) * 0
        out = out.sum() if reduce else out
        sums = logits.new_zeros((logits.shape[1], 4) if probe_per_class else 4, dtype=torch.float64)
        return (out, sums) if return_probe else out
    need_grad = torch.is_grad_enabled() and logits.requires_grad
    loss, _, sums = asymmetric_loss_op(
        logits, target, None if weight is None else weight.detach(), gamma_neg, clip, scale, scale_value, element_mean,
        params.gamma_pos, 0.0 if gamma_neg is not None else params.gamma_neg, params.clip, params.eps, params.alpha,
        params.focusing_grad,
        reduce, need_grad, return_probe, return_probe and probe_per_class, impl, options.validate)
    return (loss, sums) if return_probe else loss


def asymmetric_loss(logits: Tensor, target: Tensor, weight: Optional[Tensor] = None, gamma_pos: float = 0.0,
                    gamma_neg=4.0, clip: float = 0.05, eps: float = 0.0, alpha: Optional[float] = None,
                    focusing_grad: str = 'full', reduce: bool = False, scale=None, return_probe: bool = False,
                    impl: str = 'eager', validate: bool = True):
    """:func:`apply_asymmetric_loss` with the hyper-parameters and options as keywords. ``gamma_neg`` may
    be a float, a 0-dim tensor or a (C,) tensor (one gamma- per class)."""
    params = ASLParams(gamma_pos, gamma_neg, clip, eps, alpha, focusing_grad)
    return apply_asymmetric_loss(logits, target, weight, params, ExecOptions(impl, validate), reduce=reduce,
                                 scale=scale, return_probe=return_probe)


@torch.library.custom_op('mmdet_asl::quality_focal_loss', mutates_args=())
def quality_focal_loss_op(logits: Tensor, quality: Tensor, positive: Tensor, weight: Optional[Tensor],
                          scale: Optional[Tensor], scale_value: float, gamma_pos: float, gamma_neg: float, clip: float,
                          reduce: bool, need_grad: bool, impl: str) -> Tuple[Tensor, Tensor]:
    """(loss, dloss/dlogits) of the asymmetric quality focal loss (:mod:`.quality`); an empty tensor stands for
    the gradient when it is not asked for. Loss and gradient are multiplied by ``scale`` (a 0-dim tensor) or
    ``scale_value``."""
    dtype = _compute_dtype(logits)
    with torch.autocast(device_type=logits.device.type, enabled=False):
        z = logits.to(dtype)
        scale = scale.to(dtype) if scale is not None else (None if scale_value == 1.0 else scale_value)
        params = ASLParams(gamma_pos, gamma_neg, clip, 0.0, None, 'full')
        outputs = KernelOutputs(reduce, need_grad, False)
        loss, grad = _run(quality_loss_and_grad,
                          (z, quality.to(dtype), positive, None if weight is None else weight.to(dtype),
                           _scale_input(scale, impl, z), params, outputs), params, outputs, impl)
    return loss, logits.new_empty(0, dtype=dtype) if grad is None else grad


@quality_focal_loss_op.register_fake
def _(logits, quality, positive, weight, scale, scale_value, gamma_pos, gamma_neg, clip, reduce, need_grad, impl):
    dtype = _compute_dtype(logits)
    return (logits.new_empty(() if reduce else logits.shape, dtype=dtype),
            logits.new_empty(logits.shape if need_grad else (0, ), dtype=dtype))


def _quality_setup_context(ctx, inputs, output):
    ctx.logits_dtype = inputs[0].dtype
    ctx.save_for_backward(output[1])
    ctx.mark_non_differentiable(output[1])


def _quality_backward(ctx, grad_loss, unused_grad):
    grad, = ctx.saved_tensors
    if type(grad_loss) is Tensor and grad_loss.dim() == 0 and grad_loss.device.type == 'cpu' \
            and grad.dtype == ctx.logits_dtype and not torch.compiler.is_compiling() and grad_loss.item() == 1.0:
        return (grad, ) + (None, ) * 11
    grad = grad * grad_loss
    if ctx.logits_dtype in (torch.float16, torch.bfloat16):
        # Saturated into the logits' range: a scale of loss_weight / avg_factor with avg_factor near 0 would
        # give inf in half precision.
        limit = torch.finfo(ctx.logits_dtype).max
        grad = grad.clamp(-limit, limit)
    return (grad.to(ctx.logits_dtype), ) + (None, ) * 11


quality_focal_loss_op.register_autograd(_quality_backward, setup_context=_quality_setup_context)


def apply_quality_focal_loss(logits: Tensor,
                             quality: Tensor,
                             positive: Tensor,
                             weight: Optional[Tensor] = None,
                             *,
                             gamma_pos: float = 2.0,
                             gamma_neg: float = 2.0,
                             clip: float = 0.0,
                             reduce: bool = False,
                             scale=None,
                             impl: str = 'eager'):
    """Asymmetric quality focal loss of logits with its analytic gradient: the fused path of
    :func:`~mmdet_asl.ops.asl.reference.quality_asymmetric_loss_reference` (``activated=False``).

    Args:
        logits: (N, C) logits, any floating dtype.
        quality: (N, C) qualities q in [0, 1] (read on the positive slots).
        positive: (N, C) bool mask of the positive slots.
        weight: optional (N, 1) or (N, C) element weights (no gradient flows to them).
        gamma_pos, gamma_neg, clip: gamma+, gamma- (>= 0) and the margin m in [0, 1) of the negatives (the
            caller checks them).
        reduce: return the weighted sum instead of the element-wise loss.
        scale: optional float or 0-dim tensor multiplying loss and gradient (e.g. loss_weight / avg_factor);
            folded into the pass, so backward has nothing to multiply.
        impl: 'eager' or 'compiled'; ``MMDET_ASL_COMPILE=0/1`` in the environment overrides it.

    Returns:
        The element-wise (N, C) loss, or its sum with ``reduce``: float32 for half, bfloat16 and float32
        logits, float64 for float64 logits. No gradient flows to ``quality``.
    """
    if impl not in IMPLS:
        raise ValueError(f'impl must be one of {IMPLS}, got {impl!r}')
    if not isinstance(logits, Tensor) or not logits.is_floating_point() or logits.dim() != 2:
        raise ValueError('logits must be an (N, C) floating tensor, got '
                         f'{tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__}')
    for name, value in (('quality', quality), ('positive', positive)):
        if not isinstance(value, Tensor) or tuple(value.shape) != tuple(logits.shape):
            raise ValueError(f'{name} must be a tensor of the shape of logits {tuple(logits.shape)}, got '
                             f'{tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__}')
    if positive.dtype != torch.bool:
        raise TypeError(f'positive must be a bool mask, got {positive.dtype}')
    if weight is not None and (not isinstance(weight, Tensor) or weight.dim() != 2
                               or tuple(weight.shape) not in ((logits.shape[0], 1), tuple(logits.shape))):
        raise ValueError(f'weight must be ({logits.shape[0]}, 1) or {tuple(logits.shape)}, got '
                         f'{tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__}')
    impl = IMPL_OVERRIDE or impl
    if isinstance(scale, Tensor):
        scale, scale_value = scale.detach().reshape(()).to(logits.device), 1.0
    else:
        scale, scale_value = None, 1.0 if scale is None else check_real('scale', scale)
    if logits.numel() == 0:
        # An empty batch: zero (or an empty tensor), connected to the graph: backward gives an empty gradient.
        out = logits.to(_compute_dtype(logits)) * 0
        return out.sum() if reduce else out
    need_grad = torch.is_grad_enabled() and logits.requires_grad
    loss, _ = quality_focal_loss_op(logits, quality.detach(), positive, None if weight is None else weight.detach(),
                                    scale, scale_value, float(gamma_pos), float(gamma_neg), float(clip), reduce,
                                    need_grad, impl)
    return loss
