"""ChannelsLastHook: the model sees NHWC batches, computes the same losses and gradients as with NCHW ones, and
its weights and gradients keep their layout (checkpoints and DDP buckets are unaffected)."""
import copy
import os.path as osp
from types import SimpleNamespace

import pytest
import torch

from mmdet_asl.engine import ChannelsLastHook
from mmdet_asl.engine.channels_last_hook import to_channels_last
from test_detection_e2e import ROOT, seeded_random_model

CONFIG = osp.join(ROOT, 'configs', 'demo', 'fcos_effnet-lite0_asl_deepforest.py')


def demo_model():
    return seeded_random_model(CONFIG).train()


def demo_batch(n=2, size=128):
    from mmengine.structures import InstanceData

    from mmdet.structures import DetDataSample
    g = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for i in range(n):
        inputs.append(torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g))
        xy = torch.rand(6, 2, generator=g) * (size - 40)
        s = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size), scale_factor=(1., 1.),
                                        img_id=i))
        s.gt_instances = InstanceData(bboxes=torch.cat([xy, xy + 12 + 20 * torch.rand(6, 2, generator=g)], 1),
                                      labels=torch.zeros(6, dtype=torch.long))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def losses_and_grads(model, data):
    model.zero_grad()
    data = model.data_preprocessor(copy.deepcopy(data), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    sum(v for v in losses.values()).backward()
    return losses, {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


def test_to_channels_last_converts_only_a_4d_batch():
    x = torch.randn(2, 3, 8, 8)
    out = to_channels_last(dict(inputs=x, data_samples=['a', 'b']))
    assert out['inputs'].is_contiguous(memory_format=torch.channels_last)
    assert not x.is_contiguous(memory_format=torch.channels_last)  # the caller's tensor is untouched
    torch.testing.assert_close(out['inputs'], x, rtol=0, atol=0)
    assert out['data_samples'] == ['a', 'b']
    flat = dict(inputs=torch.randn(2, 5))
    assert to_channels_last(flat) is flat and to_channels_last([x]) == [x]


def test_hook_gives_the_backbone_nhwc_and_the_same_losses_and_gradients():
    plain = demo_model()
    hooked = copy.deepcopy(plain)
    hook = ChannelsLastHook()
    hook.before_run(SimpleNamespace(model=hooked))
    seen = []
    hooked.backbone.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    data = demo_batch()
    ref_losses, ref_grads = losses_and_grads(plain, data)
    losses, grads = losses_and_grads(hooked, data)
    assert seen == [True]
    assert losses.keys() == ref_losses.keys()
    for k in ref_losses:
        torch.testing.assert_close(losses[k], ref_losses[k], rtol=1e-4, atol=1e-5)
    assert grads.keys() == ref_grads.keys() and len(grads) > 50
    for n, g in grads.items():
        torch.testing.assert_close(g, ref_grads[n], rtol=1e-3, atol=1e-5, msg=lambda m: f'{n}: {m}')
        assert g.is_contiguous(), f'{n}: gradient left in channels-last layout'
    assert all(p.is_contiguous() for p in hooked.parameters())
    # removed after the run: the next batch is NCHW again
    hook.after_run(SimpleNamespace(model=hooked))
    seen.clear()
    losses_and_grads(hooked, data)
    assert seen == [False]


def test_hook_reaches_the_detector_inside_a_tta_wrapper():
    from mmdet.models import DetTTAModel
    model = demo_model()
    tta = DetTTAModel(module=model, tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.6), max_per_img=10))
    ChannelsLastHook().before_run(SimpleNamespace(model=tta))
    out = model.data_preprocessor(demo_batch(n=1), False)
    assert out['inputs'].is_contiguous(memory_format=torch.channels_last)


def test_model_without_data_preprocessor_is_refused_by_name():
    with pytest.raises(TypeError, match='ChannelsLastHook needs a model with a data_preprocessor'):
        ChannelsLastHook().before_run(SimpleNamespace(model=torch.nn.Linear(2, 2)))

