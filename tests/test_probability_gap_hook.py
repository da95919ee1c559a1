"""ProbabilityGapHook in MMEngine training: logged values against a hand computation from the logits the
loss saw, warm-up, the update rule, resume, fine-tuning, two losses, the compiled kernel, and DDP."""
import glob
import itertools
import json
import os
import os.path as osp
import socket

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

import mmdet_asl  # noqa: F401
from mmdet_asl.models import AsymmetricLoss
from probe_paths import compile_failed

NUM_FEATURES, NUM_CLASSES = 8, 5
RUN_IDS = itertools.count()  # one MMEngine logger per runner (their names are otherwise the second's timestamp)


class ToyMultiLabel(BaseModel):
    """A linear multi-label classifier trained with one or two AsymmetricLoss; records what each saw."""

    def __init__(self, gamma_neg=2.0, second_gamma_neg=None, impl='eager'):
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(NUM_FEATURES, NUM_CLASSES)
        self.loss_cls = AsymmetricLoss(gamma_pos=0.0, gamma_neg=gamma_neg, clip=0.05, impl=impl)
        self.aux_loss = None if second_gamma_neg is None else AsymmetricLoss(gamma_neg=second_gamma_neg, clip=0.05)
        self.seen = []  # per iteration: (logits, labels) as float64

    def forward(self, inputs, labels=None, mode='tensor'):
        logits = self.fc(inputs)
        if mode != 'loss':
            return logits
        self.seen.append((logits.detach().double(), labels.double()))
        losses = dict(loss=self.loss_cls(logits, labels))
        if self.aux_loss is not None:
            # the second loss sees other logits (shifted by 1), so its Delta p is its own
            losses['aux'] = self.aux_loss(logits + 1.0, labels)
        return losses


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


class GammaAfterHook(Hook):
    """gamma- of every loss after ProbabilityGapHook's update, per iteration; gamma- at the start."""
    priority = 'LOW'

    def __init__(self):
        self.gammas, self.start = [], None

    def _losses(self, runner):
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        return [m for m in (model.loss_cls, model.aux_loss) if m is not None]

    def before_train(self, runner):
        self.start = [plain(loss.gamma_neg) for loss in self._losses(runner)]

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.gammas.append([plain(loss.gamma_neg) for loss in self._losses(runner)])


def plain(value):
    return value.tolist() if isinstance(value, torch.Tensor) else value


def hand_gap(logits, labels):
    """(p_t+, p_t-, Delta p) from logits and 0/1 labels, straight from Eq. 9-10."""
    p = torch.sigmoid(logits)
    pt_pos = p[labels == 1].mean()
    pt_neg = (1 - p[labels == 0]).mean()
    return float(pt_pos), float(pt_neg), float(pt_pos - pt_neg)


def make_runner(work_dir, max_iters, dataset=None, adaptive=None, model=None, load_from=None, resume=False,
                hooks=None, per_class_interval=50, **kwargs):
    adaptive = dict(target=0.3, lam=0.5, gamma_max=6.0) if adaptive is None else adaptive
    hooks = [dict(type='ProbabilityGapHook', adaptive=adaptive, per_class_interval=per_class_interval)] \
        if hooks is None else hooks
    record = GammaAfterHook()
    runner = Runner(
        model=model or ToyMultiLabel(),
        work_dir=str(work_dir),
        train_dataloader=dict(dataset=dataset or ToyData(), sampler=dict(type='DefaultSampler', shuffle=False),
                              batch_size=8, num_workers=0, collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.5)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=3, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=hooks + [record],
        load_from=load_from, resume=resume, experiment_name=f'pgh_{next(RUN_IDS)}',
        default_scope='mmdet', env_cfg=dict(dist_cfg=dict(backend='gloo')), **kwargs)
    return runner, record


def history(runner, key):
    return runner.message_hub.get_scalar(key).data[0].tolist()


def expected_per_class(seen, start, target, lam, min_positives, shift=0.0, high=6.0):
    """gamma- per class after each iteration, from the logits: the minimum-count rule, then Eq. 11."""
    pending = torch.zeros(NUM_CLASSES, 4, dtype=torch.float64)
    gamma, out = torch.full((NUM_CLASSES, ), start, dtype=torch.float64), []
    for z, y in seen:
        p = torch.sigmoid(z + shift)
        pending += torch.stack([(y * p).sum(0), y.sum(0), ((1 - y) * (1 - p)).sum(0), (1 - y).sum(0)], dim=1)
        ready = (pending[:, 1] >= min_positives) & (pending[:, 3] > 0)
        gap = pending[:, 0] / pending[:, 1].clamp(min=1) - pending[:, 2] / pending[:, 3].clamp(min=1)
        gamma = torch.where(ready, (gamma + lam * (target - gap)).clamp(0, high), gamma)
        pending[ready] = 0
        out.append(gamma.tolist())
    return out


PER_CLASS = dict(target=0.3, lam=0.5, gamma_max=6.0, per_class=True, min_positives=3)


def expected_gammas(start, gaps, target, lam, warmup, low=0.0, high=6.0):
    gammas, gamma = [], start
    for it, gap in enumerate(gaps):
        if it >= warmup:
            gamma = min(max(gamma + lam * (target - gap), low), high)  # Eq. 11, sign towards the target
        gammas.append(gamma)
    return gammas


def test_logged_values_are_the_probe_of_the_seen_logits_and_warmup_holds(tmp_path):
    runner, record = make_runner(tmp_path, 5, adaptive=dict(target=0.3, lam=0.5, gamma_max=6.0, warmup_iters=2))
    runner.train()
    hand = [hand_gap(*seen) for seen in runner.model.seen]
    for i, key in enumerate(('pt_pos', 'pt_neg', 'dp')):
        assert history(runner, f'train/asl_{key}') == pytest.approx([h[i] for h in hand], abs=1e-6), key
    gammas = [g[0] for g in record.gammas]
    assert gammas[:2] == [2.0, 2.0]  # warm-up: no update in the first 2 iterations
    assert gammas == pytest.approx(expected_gammas(2.0, [h[2] for h in hand], 0.3, 0.5, warmup=2), abs=1e-6)
    assert history(runner, 'train/asl_gamma_neg') == pytest.approx(gammas)
    lines = [json.loads(line) for line in open(osp.join(runner.log_dir, 'vis_data', 'scalars.json'))]
    assert [line['asl_dp'] for line in lines if 'loss' in line] == pytest.approx([h[2] for h in hand], abs=1e-6)


def test_resume_continues_the_same_trajectory(tmp_path):
    runner, full = make_runner(tmp_path / 'full', 6)
    runner.train()
    assert len({g[0] for g in full.gammas}) > 3, f'gamma- barely moved: {full.gammas}'
    runner, resumed = make_runner(tmp_path / 'resumed', 6, load_from=str(tmp_path / 'full' / 'iter_3.pth'),
                                  resume=True)
    runner.train()
    assert resumed.start == full.gammas[2]
    assert resumed.gammas == full.gammas[3:]  # exactly, not approximately


def test_fine_tune_starts_from_the_config_unless_asked(tmp_path):
    runner, first = make_runner(tmp_path / 'first', 3)
    runner.train()
    adapted = first.gammas[-1][0]
    ckpt = str(tmp_path / 'first' / 'iter_3.pth')
    runner, tuned = make_runner(tmp_path / 'tune', 1, model=ToyMultiLabel(gamma_neg=5.0), load_from=ckpt)
    runner.train()
    assert tuned.start == [5.0] and adapted != 5.0
    log = open(glob.glob(osp.join(runner.log_dir, '*.log'))[0]).read()
    assert 'loss_cls starts with gamma-=5, m=0.05 from the config' in log
    assert f"the checkpoint's adapted gamma-={adapted:.4g}, m=0.05 are not used" in log
    runner, kept = make_runner(tmp_path / 'keep', 1, model=ToyMultiLabel(gamma_neg=5.0), load_from=ckpt,
                               adaptive=dict(target=0.3, lam=0.5, gamma_max=6.0, init='checkpoint'))
    runner.train()
    assert kept.start == [adapted]
    assert 'from the checkpoint' in open(glob.glob(osp.join(runner.log_dir, '*.log'))[0]).read()


def test_adaptive_margin_alone_follows_eq11_sign(tmp_path):
    adaptive = dict(target=0.3, adapt='clip', clip_lam=0.05, clip_max=0.3)
    runner, record = make_runner(tmp_path, 4, adaptive=adaptive)
    runner.train()
    gaps = [hand_gap(*seen)[2] for seen in runner.model.seen]
    expected, clip = [], 0.05
    for gap in gaps:  # m + clip_lam (target - Delta p), within [0, 0.3]
        clip = min(max(clip + 0.05 * (0.3 - gap), 0.0), 0.3)
        expected.append(clip)
    # The eager CPU kernel sums the probe in float32: Delta p carries ~1e-8, each step of m 0.05 of that.
    assert history(runner, 'train/asl_clip') == pytest.approx(expected, abs=1e-7)
    assert runner.model.loss_cls.clip == pytest.approx(expected[-1]) and len(set(expected)) == 4
    assert [g[0] for g in record.gammas] == [2.0] * 4  # gamma- not adapted
    assert 'train/asl_gamma_neg' not in runner.message_hub.log_scalars


def test_two_losses_keep_their_own_state(tmp_path):
    runner, record = make_runner(tmp_path, 4, model=ToyMultiLabel(gamma_neg=2.0, second_gamma_neg=5.0))
    runner.train()
    hand_first = [hand_gap(z, y)[2] for z, y in runner.model.seen]
    hand_second = [hand_gap(z + 1.0, y)[2] for z, y in runner.model.seen]
    assert history(runner, 'train/asl_dp/loss_cls') == pytest.approx(hand_first, abs=1e-6)
    assert history(runner, 'train/asl_dp/aux_loss') == pytest.approx(hand_second, abs=1e-6)
    assert [g[0] for g in record.gammas] == pytest.approx(expected_gammas(2.0, hand_first, 0.3, 0.5, 0), abs=1e-6)
    assert [g[1] for g in record.gammas] == pytest.approx(expected_gammas(5.0, hand_second, 0.3, 0.5, 0), abs=1e-6)


def test_adaptive_gamma_through_the_compiled_kernel_equals_eager(tmp_path):
    runs = {}
    for path in ('compiled', 'eager'):
        runner, record = make_runner(tmp_path / path, 5, model=ToyMultiLabel(impl=path))
        runner.train()
        runs[path] = (history(runner, 'train/loss'), [g[0] for g in record.gammas])
    assert not compile_failed()
    assert len(set(runs['eager'][1])) == 5  # gamma- changed at every update
    assert runs['compiled'][1] == pytest.approx(runs['eager'][1], rel=1e-5)
    assert runs['compiled'][0] == pytest.approx(runs['eager'][0], rel=1e-5)


def test_per_class_gamma_follows_each_class_gap(tmp_path):
    runner, record = make_runner(tmp_path, 6, adaptive=dict(PER_CLASS), per_class_interval=2)
    runner.train()
    expected = expected_per_class(runner.model.seen, 2.0, 0.3, 0.5, 3)
    got = [g[0] for g in record.gammas]
    assert len(got[0]) == NUM_CLASSES
    assert torch.tensor(got).numpy() == pytest.approx(torch.tensor(expected).numpy(), abs=1e-6)
    assert len({tuple(g) for g in got}) > 3 and len(set(got[-1])) == NUM_CLASSES  # classes moved apart
    assert history(runner, 'train/asl_gamma_neg') == pytest.approx([sum(g) / NUM_CLASSES for g in got])
    lines = [json.loads(line) for line in open(osp.join(runner.log_dir, 'probability_gap_per_class.jsonl'))]
    assert [line['iter'] for line in lines] == [2, 4, 6] and lines[-1]['gamma_neg'] == pytest.approx(got[-1])


def test_per_class_resume_continues_the_same_trajectory(tmp_path):
    runner, full = make_runner(tmp_path / 'full', 6, adaptive=dict(PER_CLASS))
    runner.train()
    runner, resumed = make_runner(tmp_path / 'resumed', 6, adaptive=dict(PER_CLASS), resume=True,
                                  load_from=str(tmp_path / 'full' / 'iter_3.pth'))
    runner.train()
    assert resumed.start == full.gammas[2] and resumed.gammas == full.gammas[3:]


def test_hooks_on_disjoint_losses_and_a_shared_loss_refused(tmp_path):
    hooks = [dict(type='ProbabilityGapHook', losses=['loss_cls'], adaptive=dict(target=0.3, lam=0.5, gamma_max=6.0)),
             dict(type='ProbabilityGapHook', losses=['aux_loss'], prefix='aux_', adaptive=dict(PER_CLASS))]
    runner, record = make_runner(tmp_path / 'ok', 3, model=ToyMultiLabel(2.0, 5.0), hooks=hooks)
    runner.train()
    seen = runner.model.seen
    assert [g[0] for g in record.gammas] == pytest.approx(
        expected_gammas(2.0, [hand_gap(z, y)[2] for z, y in seen], 0.3, 0.5, 0), abs=1e-6)
    assert torch.tensor([g[1] for g in record.gammas]).numpy() == pytest.approx(
        torch.tensor(expected_per_class(seen, 5.0, 0.3, 0.5, 3, shift=1.0)).numpy(), abs=1e-6)
    assert set(torch.load(str(tmp_path / 'ok' / 'iter_3.pth'), weights_only=False)['probability_gap']) == \
        {'loss_cls', 'aux_loss'}
    hooks[1]['losses'] = ['aux_loss', 'loss_cls']
    runner, _ = make_runner(tmp_path / 'shared', 1, model=ToyMultiLabel(2.0, 5.0), hooks=hooks)
    with pytest.raises(ValueError, match=r"same loss\(es\) \['loss_cls'\]"):
        runner.train()


# ------------------------------------------------------------------------------------------------ DDP
def _ddp_worker(rank, world_size, port, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.distributed.init_process_group('gloo', rank=rank, world_size=world_size)
    hooks = [dict(type='ProbabilityGapHook', losses=['loss_cls'], adaptive=dict(target=0.3, lam=0.5, gamma_max=6.0)),
             dict(type='ProbabilityGapHook', losses=['aux_loss'], prefix='aux_', adaptive=dict(PER_CLASS))]
    runner, record = make_runner(os.path.join(out_dir, f'rank{rank}'), 4, dataset=ToyData(seed=100 + rank),
                                 model=ToyMultiLabel(2.0, 5.0), hooks=hooks, launcher='pytorch',
                                 cfg=dict(model_wrapper_cfg=dict(type='MMDistributedDataParallel', device_ids=None)))
    runner.train()
    seen = runner.model.module.seen
    with open(os.path.join(out_dir, f'rank{rank}.json'), 'w') as f:
        json.dump(dict(gammas=record.gammas, logged_dp=history(runner, 'train/asl_dp'),
                       logits=[z.tolist() for z, _ in seen], labels=[y.tolist() for _, y in seen],
                       wrapper=type(runner.model).__name__), f)
    torch.distributed.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_ddp_every_rank_logs_the_pooled_gap_and_holds_the_same_gamma(tmp_path):
    import torch.multiprocessing as mp
    mp.spawn(_ddp_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f'rank{r}.json').read_text()) for r in range(2)]
    assert ranks[0]['wrapper'] == 'MMDistributedDataParallel'  # real DDP (gloo), gradients synchronised
    pooled, local = [], []
    for it in range(4):
        z = torch.cat([torch.tensor(r['logits'][it], dtype=torch.float64) for r in ranks])
        y = torch.cat([torch.tensor(r['labels'][it], dtype=torch.float64) for r in ranks])
        pooled.append(hand_gap(z, y)[2])
        local.append(hand_gap(torch.tensor(ranks[0]['logits'][it]), torch.tensor(ranks[0]['labels'][it]))[2])
    assert local != pytest.approx(pooled, abs=1e-4), 'ranks saw the same data: the test would prove nothing'
    for r in ranks:
        assert r['logged_dp'] == pytest.approx(pooled, abs=1e-6)
    assert ranks[0]['gammas'] == ranks[1]['gammas']
    assert [g[0] for g in ranks[0]['gammas']] == pytest.approx(expected_gammas(2.0, pooled, 0.3, 0.5, 0), abs=1e-6)
    # the per-class gamma- of the second loss follows the pooled per-class sums
    seen = [(torch.cat([torch.tensor(r['logits'][it], dtype=torch.float64) for r in ranks]),
             torch.cat([torch.tensor(r['labels'][it], dtype=torch.float64) for r in ranks])) for it in range(4)]
    assert torch.tensor([g[1] for g in ranks[0]['gammas']]).numpy() == pytest.approx(
        torch.tensor(expected_per_class(seen, 5.0, 0.3, 0.5, 3, shift=1.0)).numpy(), abs=1e-6)


def test_resume_refuses_an_adaptive_state_of_another_shape(tmp_path):
    """A global-mode checkpoint whose gamma- became a (2,) vector must not reach the loss (it would be taken as
    a per-class gamma- and broadcast): the resume stops before training, naming the checkpoint key."""
    runner, _ = make_runner(tmp_path / 'first', 3)
    runner.train()
    ckpt = torch.load(str(tmp_path / 'first' / 'iter_3.pth'), weights_only=False)
    ckpt['probability_gap']['loss_cls']['gamma_neg'] = torch.tensor([3.08, 4.08], dtype=torch.float64)
    torch.save(ckpt, str(tmp_path / 'edited.pth'))
    runner, record = make_runner(tmp_path / 'resumed', 4, load_from=str(tmp_path / 'edited.pth'), resume=True)
    with pytest.raises(ValueError, match=r"checkpoint\['probability_gap'\]\['loss_cls'\]\['gamma_neg'\] must have "
                                         r'shape \(\)'):
        runner.train()
    assert record.gammas == []  # no iteration ran
