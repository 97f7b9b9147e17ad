"""GRPO: group-normalised advantages, the k3 KL, and a step that moves the policy the way the
advantages say while the reference stays where it was."""
import numpy as np
import pytest
import torch
from mmseg.registry import MODELS

from mmcora.models.segzero import GRPOLoss, QwenReasoner, group_advantages, k3_kl
from mmcora.models.segzero.rewards import RewardTerm
from mmcora.registry import REWARDS


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_group_advantages_normalise_within_the_group():
    adv = group_advantages(torch.tensor([1., 2., 3., 6.]))
    assert torch.allclose(adv.mean(), torch.tensor(0.), atol=1e-6)
    assert torch.allclose(adv.std(), torch.tensor(1.), atol=1e-4)
    assert torch.equal(group_advantages(torch.full((8, ), 3.)), torch.zeros(8))
    assert torch.equal(group_advantages(torch.tensor([2.])), torch.zeros(1))


def test_k3_kl_is_nonnegative_and_zero_at_equality():
    logp = torch.log(torch.rand(100))
    ref = torch.log(torch.rand(100))
    assert (k3_kl(logp, ref) >= 0).all()
    assert torch.allclose(k3_kl(logp, logp), torch.zeros(100))


def test_clipped_loss_stops_the_gradient_outside_the_clip_range():
    logp = torch.zeros(1, 3, requires_grad=True)
    old = torch.tensor([[0., -1., 1.]])  # ratios 1, e, 1/e
    mask = torch.ones(1, 3)
    out = GRPOLoss(clip_eps=0.2, kl_coef=0.)([(logp, old, logp.detach(), torch.ones(1), mask)])
    out['loss_policy'].backward()
    # positive advantage: the ratio e > 1.2 is clipped (no gradient), 1 and 1/e are not
    assert logp.grad[0, 1] == 0 and logp.grad[0, 0] < 0 and logp.grad[0, 2] < 0


@pytest.fixture(scope='module')
def reasoner(qwen_dir):
    return QwenReasoner(qwen_dir, dtype='float32', max_new_tokens=12)


def test_a_step_raises_positive_advantage_replies_and_keeps_the_reference(reasoner):
    torch.manual_seed(0)
    canvas = np.random.RandomState(1).randint(0, 255, (840, 840, 3), np.uint8)
    prompt = reasoner.build_prompt(canvas, 'Where is the bus?')
    rollout = reasoner.sample(prompt, 8, generator=torch.Generator().manual_seed(3))
    rewards = torch.tensor([1., 0., 0., 1., 0., 1., 0., 0.])
    adv = group_advantages(rewards)
    reasoner.sync_reference()
    with torch.no_grad(), reasoner.reference() as ref_model:
        ref_before = reasoner.completion_logprobs(prompt, rollout.ids, model=ref_model)
    optimizer = torch.optim.SGD(reasoner.trainable_parameters(), lr=0.05)

    def seq_logp():
        with torch.no_grad():
            return (reasoner.completion_logprobs(prompt, rollout.ids) * rollout.mask).sum(1)

    before = seq_logp()
    logp = reasoner.completion_logprobs(prompt, rollout.ids)
    with torch.no_grad(), reasoner.reference() as ref_model:
        ref = reasoner.completion_logprobs(prompt, rollout.ids, model=ref_model)
    losses = GRPOLoss(0.2, 5e-3)([(logp, rollout.logprobs, ref, adv, rollout.mask)])
    (losses['loss_policy'] + losses['loss_kl']).backward()
    optimizer.step()
    change = seq_logp() - before
    positive, negative = rewards > 0, rewards == 0
    assert (change[positive] > 0).all(), change
    assert change[positive].mean() > change[negative].mean()
    with torch.no_grad(), reasoner.reference() as ref_model:
        ref_after = reasoner.completion_logprobs(prompt, rollout.ids, model=ref_model)
    assert torch.equal(ref_before, ref_after)


@REWARDS.register_module(force=True)
class _LengthReward(RewardTerm):
    """Test reward: characters in the reply (random replies of 10 tokens differ in it)."""

    def __call__(self, reply, target):
        return len(reply) / 100


def test_segmentor_grpo_loss_logs_every_term_and_reaches_the_policy(qwen_dir, sam2_dir):
    from mmengine.registry import init_default_scope

    from mmcora.structures import ReasoningDataSample
    init_default_scope('mmseg')
    model = MODELS.build(
        dict(
            type='SegZeroSegmentor',
            reasoner=dict(
                type='QwenReasoner', pretrained=qwen_dir, dtype='float32', max_new_tokens=10),
            segmenter=dict(type='SAM2Segmenter', pretrained=sam2_dir),
            reward=dict(
                type='SegZeroReward',
                terms=[dict(type='ThinkFormatReward'),
                       dict(type='_LengthReward')]),
            train_cfg=dict(num_generations=4)))
    sample = ReasoningDataSample()
    sample.set_metainfo(
        dict(
            ori_shape=(64, 128),
            canvas=840,
            queries=[dict(text='the car', class_name='car', type='semantic')],
            segzero_targets=[dict(box=[10, 10, 100, 100], points=[[20, 20], [50, 50]])]))
    inputs = dict(
        canvas=[np.zeros((840, 840, 3), np.uint8)], image=[np.zeros((64, 128, 3), np.uint8)])
    torch.manual_seed(0)
    losses = model(inputs, [sample], mode='loss')
    assert float(losses['zero_advantage_groups']) == 0.
    assert set(losses) >= {
        'loss_policy', 'loss_kl', 'kl', 'reward', 'reply_length', 'zero_advantage_groups',
        'reward_ThinkFormatReward', 'reward__LengthReward'
    }
    assert bool(model.reasoner.reference_synced)  # the first GRPO step took the reference
    (losses['loss_policy'] + losses['loss_kl']).backward()
    grads = [p.grad for p in model.reasoner.trainable_parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    assert all(p.grad is None for p in model.reasoner.reference_model.parameters())
    assert all(p.grad is None for p in model.segmenter.parameters())
