"""Probability-gap probe (Eq. 9-10) and adaptive asymmetry (Eq. 11): values, direction, bounds, logging,
resume and DDP agreement."""
import json
import math
import os
import socket

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

import mmdet_asl  # noqa: F401
from mmdet_asl.engine import ProbabilityGapHook, adaptive_gamma_update
from mmdet_asl.functional import probability_gap, probability_stats
from mmdet_asl.models import AsymmetricLoss


# ----------------------------------------------------------------------------------------------- probe
def test_probe_equals_hand_computation():
    # p = sigmoid(z) of a 2 x 3 example; index labels with 3 = background
    p = torch.tensor([[0.9, 0.2, 0.4], [0.3, 0.6, 0.1]], dtype=torch.float64)
    z = torch.logit(p)
    labels = torch.tensor([0, 3])  # sample 0 is class 0, sample 1 is background
    # positives: p[0, 0] = 0.9 -> p_t+ = 0.9
    # negatives: 1 - p over the other 5 slots: 0.8, 0.6, 0.7, 0.4, 0.9 -> p_t- = 3.4 / 5 = 0.68
    pt_pos, pt_neg, gap = probability_gap(probability_stats(z, labels))
    assert pt_pos == pytest.approx(0.9) and pt_neg == pytest.approx(0.68) and gap == pytest.approx(0.22)
    # the same from the loss's fused pass (float32 logits), and weight 0 removes a slot
    loss = AsymmetricLoss(probe=True)
    loss(z.float(), labels)
    assert loss.probability_gap() == pytest.approx((0.9, 0.68, 0.22), abs=1e-6)
    loss.pop_probe_sums()
    weight = torch.tensor([[1., 1., 1.], [1., 0., 1.]])  # drop the slot with p = 0.6 (1 - p = 0.4)
    loss(z.float(), labels, weight=weight)
    assert loss.probability_gap() == pytest.approx((0.9, 3.0 / 4, 0.9 - 0.75), abs=1e-6)
    # soft targets: y = 0.5 counts half positive, half negative
    soft = torch.tensor([[0.5, 0., 0.], [0., 0., 0.]], dtype=torch.float64)
    pt_pos, pt_neg, _ = probability_gap(probability_stats(z, soft))
    assert pt_pos == pytest.approx(0.9)
    assert pt_neg == pytest.approx((0.5 * 0.1 + 0.8 + 0.6 + 0.7 + 0.4 + 0.9) / 5.5)


def test_probe_only_in_training_and_sums_accumulate():
    loss = AsymmetricLoss(probe=True)
    z, labels = torch.randn(4, 3), torch.tensor([0, 1, 3, 2])
    loss(z, labels)
    loss(z, labels)
    once = probability_stats(z, labels)
    torch.testing.assert_close(loss.probe_sums, 2 * once, rtol=1e-6, atol=1e-6)
    sums = loss.pop_probe_sums()
    assert sums[1] == 6 and loss.probe_sums.abs().sum() == 0
    loss.eval()
    loss(z, labels)
    assert loss.probe_sums.abs().sum() == 0


def test_no_positives_gives_nan_gap():
    _, _, gap = probability_gap(probability_stats(torch.randn(3, 2), torch.tensor([2, 2, 2])))
    assert math.isnan(gap)


# ------------------------------------------------------------------------------------------ controller
def test_controller_direction_and_bounds():
    # Delta p below the target (negatives too confident relative to positives, as CE): raise gamma-
    assert adaptive_gamma_update(2.0, gap=-0.2, target=0.1, lam=1.0, gamma_min=0, gamma_max=10) == \
        pytest.approx(2.3)
    # above the target: lower gamma-
    assert adaptive_gamma_update(2.0, gap=0.3, target=0.1, lam=1.0, gamma_min=0, gamma_max=10) == \
        pytest.approx(1.8)
    # bounds
    assert adaptive_gamma_update(9.9, gap=-1.0, target=0.3, lam=1.0, gamma_min=0, gamma_max=10) == 10
    assert adaptive_gamma_update(0.1, gap=1.0, target=0.0, lam=1.0, gamma_min=0.0, gamma_max=10) == 0.0
    # no measurement, no move
    assert adaptive_gamma_update(3.0, gap=float('nan'), target=0.1, lam=1.0, gamma_min=0, gamma_max=10) == 3.0


def test_hook_rejects_bad_config_and_models_without_asl():
    with pytest.raises(ValueError, match='target'):
        ProbabilityGapHook(adaptive=dict(lam=0.1))
    with pytest.raises(ValueError, match='unknown'):
        ProbabilityGapHook(adaptive=dict(target=0.1, lamda=0.1))
    with pytest.raises(ValueError, match='gamma_min'):
        ProbabilityGapHook(adaptive=dict(target=0.1, gamma_min=5, gamma_max=1))

    class Runnerish:
        model = torch.nn.Linear(2, 2)

    with pytest.raises(RuntimeError, match='no mmdet_asl AsymmetricLoss'):
        ProbabilityGapHook().before_train(Runnerish())


def test_gamma_neg_buffer_is_in_state_dict():
    loss = AsymmetricLoss(gamma_neg=4.0)
    loss.gamma_neg = 2.5
    state = loss.state_dict()
    assert float(state['gamma_neg_buffer']) == 2.5 and 'probe_sums' not in state
    fresh = AsymmetricLoss(gamma_neg=4.0)
    fresh.load_state_dict(state)
    assert fresh.gamma_neg == 2.5
    with pytest.raises(ValueError, match='gamma_neg'):
        loss.gamma_neg = -1.0


# ------------------------------------------------------------------------ a toy MMEngine training setup
NUM_FEATURES, NUM_CLASSES = 8, 5


class ToyMultiLabel(BaseModel):
    """A linear multi-label classifier trained with our AsymmetricLoss."""

    def __init__(self, gamma_neg=2.0):
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(NUM_FEATURES, NUM_CLASSES)
        self.loss_cls = AsymmetricLoss(gamma_pos=0.0, gamma_neg=gamma_neg, clip=0.05)

    def forward(self, inputs, labels=None, mode='tensor'):
        logits = self.fc(inputs)
        if mode == 'loss':
            return dict(loss=self.loss_cls(logits, labels))
        return logits


class ToyData(Dataset):
    """Deterministic features and sparse multi-labels; ``seed`` makes each rank's data its own."""

    def __init__(self, seed=0, size=64):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(size, NUM_FEATURES, generator=g)
        w = torch.randn(NUM_FEATURES, NUM_CLASSES, generator=g)
        self.y = ((self.x @ w) > 1.5).float()

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], labels=self.y[i])


class RecordHook(Hook):
    """After each iteration, record gamma- (after the adaptive update) and the rank-local Delta p."""
    priority = 'ABOVE_NORMAL'  # the local sums are read before ProbabilityGapHook pops them

    def __init__(self):
        self.gammas, self.local_gaps = [], []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        self.local_gaps.append(model.loss_cls.probability_gap()[2])

    def after_train(self, runner):
        pass


class GammaAfterHook(Hook):
    priority = 'LOW'  # after ProbabilityGapHook

    def __init__(self, store):
        self.store = store

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        self.store.append(model.loss_cls.gamma_neg)


def make_runner(work_dir, max_iters, dataset, gammas, resume_from=None, **kwargs):
    record = RecordHook()
    runner = Runner(
        model=ToyMultiLabel(),
        work_dir=str(work_dir),
        train_dataloader=dict(dataset=dataset, sampler=dict(type='DefaultSampler', shuffle=False),
                              batch_size=8, num_workers=0, collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.5)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=3, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[dict(type='ProbabilityGapHook', adaptive=dict(target=0.3, lam=0.5, gamma_max=6.0)),
                      record, GammaAfterHook(gammas)],
        load_from=resume_from, resume=resume_from is not None,
        default_scope='mmdet', env_cfg=dict(dist_cfg=dict(backend='gloo')), **kwargs)
    return runner, record


def test_hook_logs_probe_and_adapts_gamma(tmp_path):
    gammas = []
    runner, _ = make_runner(tmp_path, 4, ToyData(), gammas)
    runner.train()
    hub = runner.message_hub
    for key in ('train/asl_pt_pos', 'train/asl_pt_neg', 'train/asl_dp', 'train/asl_gamma_neg'):
        assert key in hub.log_scalars, key
    assert len(gammas) == 4 and gammas[-1] != 2.0
    assert hub.get_scalar('train/asl_gamma_neg').current() == pytest.approx(gammas[-1])
    # the JSON scalars file gets them too
    scalars = list(tmp_path.glob('*/vis_data/scalars.json'))
    assert scalars, 'LocalVisBackend wrote no scalars.json'
    lines = [json.loads(line) for line in scalars[0].read_text().splitlines()]
    assert all('asl_dp' in line and 'asl_gamma_neg' in line for line in lines if 'loss' in line)


def test_resume_reproduces_gamma_trajectory(tmp_path):
    full, resumed = [], []
    runner, _ = make_runner(tmp_path / 'full', 6, ToyData(), full)
    runner.train()
    assert len(set(full)) > 3, f'gamma- barely moved: {full}'
    checkpoint = tmp_path / 'full' / 'iter_3.pth'
    assert checkpoint.exists()
    runner, _ = make_runner(tmp_path / 'resumed', 6, ToyData(), resumed, resume_from=str(checkpoint))
    runner.train()
    assert resumed == full[3:], (full, resumed)  # exactly, not approximately


# ------------------------------------------------------------------------------------------------ DDP
def _ddp_worker(rank, world_size, port, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.distributed.init_process_group('gloo', rank=rank, world_size=world_size)
    gammas = []
    # every rank its own data; DefaultSampler also gives every rank its own indices
    runner, record = make_runner(os.path.join(out_dir, f'rank{rank}'), 5, ToyData(seed=100 + rank), gammas,
                                 launcher='pytorch',
                                 cfg=dict(model_wrapper_cfg=dict(type='MMDistributedDataParallel',
                                                                 device_ids=None)))
    runner.train()
    with open(os.path.join(out_dir, f'rank{rank}.json'), 'w') as f:
        json.dump(dict(gammas=gammas, local_gaps=record.local_gaps, wrapper=type(runner.model).__name__), f)
    torch.distributed.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_ddp_two_ranks_agree_on_gamma(tmp_path):
    import torch.multiprocessing as mp
    mp.spawn(_ddp_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = json.loads((tmp_path / 'rank0.json').read_text())
    r1 = json.loads((tmp_path / 'rank1.json').read_text())
    assert len(r0['gammas']) == 5
    assert r0['wrapper'] == 'MMDistributedDataParallel'  # real DDP (gloo), gradients synchronised
    assert r0['local_gaps'] != r1['local_gaps'], 'ranks saw the same data: the test would prove nothing'
    assert r0['gammas'] == r1['gammas']
    assert len(set(r0['gammas'])) > 2
