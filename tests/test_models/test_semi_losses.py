"""VarianceWeightedLoss (Eq. 6-7 and its mappings) and TokenContrastiveLoss (Eq. 8)."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmcora.models.losses import (MaskBCELoss, MaskDiceLoss, TokenContrastiveLoss,
                                  VarianceWeightedLoss, rephrasing_variance)


def test_rephrasing_variance_is_eq6():
    probs = torch.tensor([[[[0., 1.]], [[1., 1.]]]])  # Q=1, K-1=2, 1x2
    assert torch.allclose(rephrasing_variance(probs), torch.tensor([[[0.25, 0.]]]))


def test_stability_mapping_weighs_unstable_pixels_less():
    """The text: pixels where rephrasings disagree weigh less (0 at the largest variance)."""
    agree = torch.full((1, 6, 1, 1), 0.9)
    split = torch.tensor([0., 1., 0., 1., 0., 1.]).view(1, 6, 1, 1)
    probs = torch.cat([agree, split], dim=3)
    targets = torch.ones((1, 1, 2), dtype=torch.uint8)
    lam = VarianceWeightedLoss().pixel_weights(targets, probs)
    assert torch.allclose(lam, torch.tensor([[[1., 0.]]]))
    literal = VarianceWeightedLoss(mapping='variance').pixel_weights(targets, probs)
    assert torch.allclose(literal, torch.tensor([[[0., 0.25]]]))  # Eq. 6: the opposite


def test_confidence_and_none_mappings():
    targets = torch.ones((1, 1, 3), dtype=torch.uint8)
    conf = torch.tensor([[[0.5, 0.95, 1.0]]])
    lam = VarianceWeightedLoss(mapping='confidence').pixel_weights(targets, confidence=conf)
    assert lam.tolist() == [[[0., 1., 1.]]]
    assert VarianceWeightedLoss(mapping='none').pixel_weights(targets).tolist() == [[[1.] * 3]]
    assert not VarianceWeightedLoss(mapping='confidence').needs_rephrasings
    with pytest.raises(ValueError, match='confidence'):
        VarianceWeightedLoss(mapping='confidence').pixel_weights(targets)
    with pytest.raises(ValueError, match='K-1'):
        VarianceWeightedLoss().pixel_weights(targets, torch.zeros((1, 1, 1, 3)))
    with pytest.raises(ValueError, match='mapping'):
        VarianceWeightedLoss(mapping='eq6')


def test_loss_is_weighted_bce_plus_dice_and_ignores_zero_weight_pixels():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 5, requires_grad=True)
    targets = (torch.rand(2, 4, 5) > 0.5).to(torch.uint8)
    targets[0, 0, 0] = 255
    lam = torch.rand(2, 4, 5)
    lam[1, 2] = 0
    loss = VarianceWeightedLoss()(logits, targets, lam)
    expected = MaskBCELoss(2.0)(logits, targets, lam) + MaskDiceLoss(0.5)(logits, targets, lam)
    assert torch.allclose(loss, expected)
    loss.backward()
    assert torch.all(logits.grad[1, 2] == 0) and logits.grad[0, 0, 0] == 0
    assert logits.grad.abs().sum() > 0


def test_sum_reduction_is_eq7_sum_over_pixels():
    logits = torch.zeros(1, 2, 2)
    targets = torch.tensor([[[1, 0], [1, 255]]], dtype=torch.uint8)
    lam = torch.tensor([[[1., 0.5], [0., 1.]]])
    loss = VarianceWeightedLoss(reduction='sum', dice_weight=0.)(logits, targets, lam)
    assert math.isclose(float(loss), 2.0 * 1.5 * math.log(2), rel_tol=1e-6)
    mean = VarianceWeightedLoss(dice_weight=0.)(logits, targets, lam)
    assert math.isclose(float(mean), 2.0 * 1.5 * math.log(2) / 3, rel_tol=1e-6)


def test_weights_get_no_gradient():
    logits = torch.randn(1, 3, 3)
    lam = torch.rand(1, 3, 3, requires_grad=True)
    loss = VarianceWeightedLoss()(logits, torch.ones((1, 3, 3), dtype=torch.uint8), lam)
    assert not loss.requires_grad


def infonce_reference(v, v_cls, bank, bank_cls, tau):
    """Eq. 8 written as a loop, mean over (anchor, positive) pairs."""
    terms = []
    for a, c in zip(v, v_cls):
        sims = [F.cosine_similarity(a, k, dim=0) / tau for k in bank]
        negatives = [s for s, kc in zip(sims, bank_cls) if kc != c]
        if not negatives:
            continue
        for s, kc in zip(sims, bank_cls):
            if kc == c:
                terms.append(-torch.log(s.exp() / (s.exp() + sum(n.exp() for n in negatives))))
    return torch.stack(terms).mean()


def test_token_contrastive_matches_eq8_loop():
    torch.manual_seed(0)
    v = torch.randn(4, 8, requires_grad=True)
    v_cls = torch.tensor([0, 1, 2, 5])  # class 5 has no positive: no term
    bank = torch.randn(7, 8)
    bank_cls = torch.tensor([0, 0, 1, 1, 1, 2, 3])
    loss = TokenContrastiveLoss()(v, v_cls, bank, bank_cls)
    assert torch.allclose(loss, infonce_reference(v, v_cls, bank, bank_cls, 0.07), atol=1e-5)
    loss.backward()
    assert v.grad[3].abs().sum() == 0 and v.grad[:3].abs().sum() > 0
    summed = TokenContrastiveLoss(reduction='sum')(v, v_cls, bank, bank_cls)
    assert torch.allclose(summed, loss * 6, atol=1e-4)  # 2 + 3 + 1 positive pairs


def test_token_contrastive_pulls_towards_same_class():
    bank = torch.tensor([[1., 0.], [0., 1.]])
    bank_cls = torch.tensor([0, 1])
    near = TokenContrastiveLoss()(torch.tensor([[1., 0.1]]), torch.tensor([0]), bank, bank_cls)
    far = TokenContrastiveLoss()(torch.tensor([[0.1, 1.]]), torch.tensor([0]), bank, bank_cls)
    assert near < 0.01 < far


def test_token_contrastive_without_usable_pairs_is_connected_zero():
    v = torch.randn(2, 4, requires_grad=True)
    loss = TokenContrastiveLoss()(v, torch.tensor([0, 0]), torch.randn(3, 4),
                                  torch.tensor([0, 0, 0]))  # no negatives
    assert loss.item() == 0 and loss.requires_grad
    empty = TokenContrastiveLoss()(v, torch.tensor([0, 0]), torch.zeros(0, 4),
                                   torch.zeros(0, dtype=torch.long))
    assert empty.item() == 0 and empty.requires_grad
