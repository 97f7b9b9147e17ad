"""MaskBCELoss and MaskDiceLoss: hand-checked values, LISA equivalence, ignore and edge cases."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

import mmcora.models.losses  # noqa: F401  registers the losses
from mmcora.models.losses import MaskBCELoss, MaskDiceLoss

I = 255  # noqa: E741  ignore (the letter reads as a cell of the masks below)
LN2, LN3 = math.log(2), math.log(3)
LOSSES = [MaskBCELoss, MaskDiceLoss]


def lisa_sigmoid_ce_loss(logits, targets):
    """LISA's ``sigmoid_ce_loss`` (model/LISA.py), ignoring nothing."""
    loss = F.binary_cross_entropy_with_logits(logits, targets, reduction='none')
    return loss.flatten(1, 2).mean(1).sum() / (logits.shape[0] + 1e-8)


def lisa_dice_loss(logits, targets, scale=1000, eps=1e-6):
    """LISA's ``dice_loss`` (model/LISA.py), with its /1000 scaling and eps 1e-6."""
    p = logits.sigmoid().flatten(1, 2)
    t = targets.flatten(1, 2)
    numerator = 2 * (p / scale * t).sum(-1)
    denominator = (p / scale).sum(-1) + (t / scale).sum(-1)
    loss = 1 - (numerator + eps) / (denominator + eps)
    return loss.sum() / (logits.shape[0] + 1e-8)


def t(rows, dtype=torch.float32):
    return torch.tensor(rows, dtype=dtype)


def test_bce_hand_values():
    logits = t([[[0., 0.], [LN3, -LN3]]])
    # per pixel: ln2, ln2, ln(1 + 1/3), ln(1 + 3)
    full = MaskBCELoss()(logits, t([[[1, 0], [1, 1]]], torch.uint8))
    assert full.item() == pytest.approx(2.0 * (6 * LN2 - LN3) / 4)
    # the ignored second pixel leaves (ln2 + ln(4/3) + ln4) / 3
    ignored = MaskBCELoss()(logits, t([[[1, I], [1, 1]]], torch.uint8))
    assert ignored.item() == pytest.approx(2.0 * (5 * LN2 - LN3) / 3)


def test_bce_weighted_hand_values():
    logits = t([[[0., 0.], [LN3, -LN3]]])
    targets = t([[[1, 0], [1, I]]], torch.long)
    weights = t([[[1., .5], [0., 9.]]])  # the 9 sits on an ignore pixel
    # Σ w·bce = ln2 + .5 ln2 + 0 = 1.5 ln2 over 3 valid pixels, or over Σw = 1.5
    by_valid = MaskBCELoss(loss_weight=1.0)(logits, targets, weights)
    by_weights = MaskBCELoss(loss_weight=1.0, weight_normalizer='weights')(logits, targets, weights)
    assert by_valid.item() == pytest.approx(1.5 * LN2 / 3)
    assert by_weights.item() == pytest.approx(LN2)


def test_dice_hand_values():
    logits = torch.zeros(1, 2, 2)  # p = 1/2 everywhere
    targets = t([[[1, 0], [1, I]]], torch.uint8)
    # valid p·t = 1/2 + 1/2, Σp = 3/2, Σt = 2: 1 - (2 + eps) / (3.5 + eps)
    loss = MaskDiceLoss()(logits, targets)
    assert loss.item() == pytest.approx(0.5 * (1 - 2.001 / 3.501))
    weights = t([[[2., 1.], [0., 1.]]])
    # valid (w, t): (2, 1), (1, 0), (0, 1) -> Σw·p·t = 2·1/2 = 1, Σw·p = 3/2, Σw·t = 2
    weighted = MaskDiceLoss(loss_weight=1.0, eps=1e-3)(logits, targets, weights)
    assert weighted.item() == pytest.approx(1 - (2 * 1 + 1e-3) / (1.5 + 2 + 1e-3))


def test_match_lisa_without_ignore():
    torch.manual_seed(0)
    logits = torch.randn(3, 17, 23) * 4
    targets = (torch.rand(3, 17, 23) > 0.6).to(torch.uint8)
    targets[2] = 0  # an empty target, as for a class absent from the image
    bce = MaskBCELoss(loss_weight=1.0)(logits, targets)
    dice = MaskDiceLoss(loss_weight=1.0)(logits, targets)
    assert bce.item() == pytest.approx(
        lisa_sigmoid_ce_loss(logits, targets.float()).item(), rel=1e-5)
    assert dice.item() == pytest.approx(lisa_dice_loss(logits, targets.float()).item(), rel=1e-5)


@pytest.mark.parametrize('loss_cls', LOSSES)
@pytest.mark.parametrize('with_weights', [False, True])
def test_ignore_pixels_change_nothing_and_get_zero_gradient(loss_cls, with_weights):
    torch.manual_seed(1)
    targets = (torch.rand(2, 6, 5) > 0.5).to(torch.long)
    ignore = torch.rand(2, 6, 5) > 0.6
    targets[ignore] = I
    weights = torch.rand(2, 6, 5) if with_weights else None
    base = torch.randn(2, 6, 5)
    values = []
    for fill in (0.0, 50.0, -50.0, float('inf'), float('-inf')):
        logits = torch.where(ignore, torch.full_like(base, fill), base).requires_grad_()
        loss = loss_cls()(logits, targets, weights)
        loss.backward()
        assert torch.isfinite(loss)
        assert torch.all(logits.grad[ignore] == 0)
        assert torch.all(logits.grad[~ignore] != 0)
        values.append(loss.item())
    assert values == [values[0]] * len(values)


@pytest.mark.parametrize('loss_cls', LOSSES)
def test_no_masks_gives_zero_with_graph(loss_cls):
    logits = torch.zeros(0, 4, 4, requires_grad=True)
    loss = loss_cls()(logits, torch.zeros(0, 4, 4, dtype=torch.uint8))
    assert loss.item() == 0 and loss.requires_grad and loss.grad_fn is not None
    loss.backward()
    assert logits.grad.shape == (0, 4, 4)


@pytest.mark.parametrize('loss_cls', LOSSES)
@pytest.mark.parametrize('weights', [None, 'zeros'])
def test_mask_without_valid_pixels_contributes_zero(loss_cls, weights):
    torch.manual_seed(2)
    logits = torch.randn(2, 3, 3, requires_grad=True)
    targets = torch.randint(0, 2, (2, 3, 3), dtype=torch.uint8)
    if weights is None:
        targets[1] = I
    else:  # zero total weight on mask 1 is a mask without valid pixels for the loss
        weights = torch.ones(2, 3, 3)
        weights[1] = 0
    # 'weights' normalisation divides by Σw, the case where a zero total weight could be 0/0
    kwargs = dict(weight_normalizer='weights') if loss_cls is MaskBCELoss else {}
    loss = loss_cls(**kwargs)(logits, targets, weights)
    only_first = loss_cls()(logits[:1], targets[:1])
    # mask 1 adds 0 and still counts in the mean over masks, as LISA divides by num_masks
    assert loss.item() == pytest.approx(only_first.item() / 2)
    loss.backward()
    assert torch.isfinite(logits.grad).all() and torch.all(logits.grad[1] == 0)


@pytest.mark.parametrize('loss_cls', LOSSES)
def test_all_background_target_pushes_logits_down(loss_cls):
    logits = torch.zeros(1, 3, 3, requires_grad=True)
    loss = loss_cls()(logits, torch.zeros(1, 3, 3, dtype=torch.uint8))
    loss.backward()
    assert loss.item() > 0
    assert torch.all(logits.grad > 0)  # gradient descent lowers every logit


@pytest.mark.parametrize('loss_cls', LOSSES)
@pytest.mark.parametrize('normalizer', ['valid', 'weights'])
def test_unit_weights_equal_no_weights_and_loss_weight_scales(loss_cls, normalizer):
    torch.manual_seed(3)
    logits = torch.randn(3, 5, 4)
    targets = torch.randint(0, 2, (3, 5, 4))
    targets[0, :2] = I
    kwargs = dict(weight_normalizer=normalizer) if loss_cls is MaskBCELoss else {}
    plain = loss_cls(loss_weight=1.0, **kwargs)(logits, targets)
    ones = loss_cls(loss_weight=1.0, **kwargs)(logits, targets, torch.ones(3, 5, 4))
    tripled = loss_cls(loss_weight=3.0, **kwargs)(logits, targets)
    assert ones.item() == pytest.approx(plain.item(), rel=1e-6)
    assert tripled.item() == pytest.approx(3 * plain.item(), rel=1e-6)


@pytest.mark.parametrize('loss_cls', LOSSES)
def test_low_precision_logits_give_float32(loss_cls):
    logits = torch.randn(2, 4, 4)
    targets = torch.randint(0, 2, (2, 4, 4))
    low = loss_cls()(logits.to(torch.bfloat16), targets)
    assert low.dtype == torch.float32
    assert low.item() == pytest.approx(loss_cls()(logits.to(torch.bfloat16).float(),
                                                  targets).item())


@pytest.mark.parametrize('loss_cls', LOSSES)
def test_shape_mismatch_raises(loss_cls):
    with pytest.raises(ValueError, match=r'targets \(2, 4, 3\)'):
        loss_cls()(torch.zeros(2, 4, 4), torch.zeros(2, 4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r'\(Q, H, W\)'):
        loss_cls()(torch.zeros(4, 4), torch.zeros(4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r'weights \(2, 4\)'):
        loss_cls()(torch.zeros(2, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long), torch.ones(2, 4))


def test_registry_build_defaults_and_bad_options():
    bce = MODELS.build(dict(type='MaskBCELoss'))
    dice = MODELS.build(dict(type='MaskDiceLoss', loss_name='loss_dice_u'))
    assert (bce.loss_weight, bce.ignore_index, bce.loss_name) == (2.0, 255, 'loss_mask_bce')
    assert (dice.loss_weight, dice.eps, dice.loss_name) == (0.5, 1e-3, 'loss_dice_u')
    with pytest.raises(ValueError, match='weight_normalizer'):
        MaskBCELoss(weight_normalizer='sum')
    with pytest.raises(ValueError, match='eps'):
        MaskDiceLoss(eps=0)
