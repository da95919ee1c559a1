"""The loss inside an outer ``torch.compile``: a tiny FCOS trains through MMEngine's ``Runner`` with
``compile`` set, the loss's own kernel compiled as well (the eager kernel inside an outer graph is tested on
its own in test_loss_compiled.py), and the compiled step gives the loss of the uncompiled one."""
import copy

import torch
from mmengine.runner import Runner
from mmengine.structures import InstanceData
from torch.utils.data import Dataset

from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules

import mmdet_asl  # noqa: F401

SIZE = 64


class TinyBoxes(Dataset):
    """Two 64 x 64 images with two boxes each, already in the detector's input format."""

    def __len__(self):
        return 2

    def __getitem__(self, index):
        g = torch.Generator().manual_seed(index)
        sample = DetDataSample(metainfo=dict(img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE), scale_factor=(1., 1.),
                                             pad_shape=(SIZE, SIZE), batch_input_shape=(SIZE, SIZE)))
        sample.gt_instances = InstanceData(bboxes=torch.tensor([[4., 6., 30., 40.], [20., 16., 60., 58.]]),
                                           labels=torch.tensor([0, 2]))
        return dict(inputs=torch.randint(0, 256, (3, SIZE, SIZE), dtype=torch.uint8, generator=g),
                    data_samples=sample)


def tiny_fcos(impl):
    return dict(
        type='FCOS',
        data_preprocessor=dict(type='DetDataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.]),
        backbone=dict(type='ResNet', depth=18, base_channels=8, num_stages=2, strides=(1, 2), dilations=(1, 1),
                      out_indices=(0, 1),
                      norm_cfg=dict(type='BN')),
        neck=dict(type='FPN', in_channels=[8, 16], out_channels=8, start_level=0, num_outs=2),
        bbox_head=dict(type='FCOSHead', num_classes=3, in_channels=8, feat_channels=8, stacked_convs=1,
                       strides=[4, 8], regress_ranges=((-1, 32), (32, 1e8)), norm_cfg=dict(type='GN', num_groups=4),
                       loss_cls=dict(type='AsymmetricLoss', use_sigmoid=True, gamma_pos=1.0, gamma_neg=2.0, clip=0.05,
                                     impl=impl, probe=True)),
        train_cfg=dict(), test_cfg=dict(nms_pre=100, score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5),
                                        max_per_img=10))


def make_runner(tmp_path, impl, compile_cfg):
    return Runner(model=tiny_fcos(impl), work_dir=str(tmp_path),
                  train_dataloader=dict(dataset=TinyBoxes(), batch_size=2, num_workers=0,
                                        sampler=dict(type='DefaultSampler', shuffle=False),
                                        collate_fn=dict(type='pseudo_collate')),
                  train_cfg=dict(by_epoch=False, max_iters=2, val_interval=100),
                  optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.0, momentum=0.0)),
                  default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=100),
                                     logger=dict(type='LoggerHook', interval=1)),
                  randomness=dict(seed=0), default_scope='mmdet', cfg=dict(compile=compile_cfg))


def test_trains_under_runner_compile(tmp_path):
    impl = 'compiled'
    register_all_modules()
    # aot_eager: dynamo and AOTAutograd trace the train step as with the default backend (where the loss
    # must be traceable), without inductor's code generation for the whole detector.
    runner = make_runner(tmp_path / 'compiled', impl, dict(backend='aot_eager'))
    runner.train()  # initialises the weights, compiles model.train_step and runs it; lr = 0 keeps the weights
    assert runner.iter == 2
    plain = make_runner(tmp_path / 'plain', impl, None)
    plain.model.load_state_dict(copy.deepcopy(runner.model.state_dict()))
    data = runner.train_dataloader.dataset
    batch = dict(inputs=[data[0]['inputs'], data[1]['inputs']],
                 data_samples=[data[0]['data_samples'], data[1]['data_samples']])
    loss_asl = runner.model.bbox_head.loss_cls
    assert loss_asl.probe_sums[1] > 0 and torch.isfinite(loss_asl.probe_sums).all()
    plain.model.train()
    runner.model.train()
    compiled_out = runner.model.train_step(copy.deepcopy(batch), runner.optim_wrapper)
    plain_out = plain.model.train_step(copy.deepcopy(batch), plain.build_optim_wrapper(plain.optim_wrapper))
    torch.testing.assert_close(compiled_out['loss_cls'], plain_out['loss_cls'], rtol=1e-5, atol=1e-6)
