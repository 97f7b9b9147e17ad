"""ReasoningSegInferencer on a Seg-Zero config: masks, reasoning, box and points, overlay."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from ..conftest import REPO

CONFIG = osp.join(REPO, 'configs', 'segzero', 'segzero_tiny_sft-600-grpo-100_toy-city-1-30.py')
# A reply in canvas pixels (840 x 840): the box's right half of the canvas, two points in it.
REPLY = ('<think>The car is on the right.</think><answer>{"bbox": [420,210,840,630], '
         '"points_1": [500,400], "points_2": [700,420]}</answer>')


@pytest.fixture(scope='module')
def segzero(qwen_dir):
    from mmcora.apis import ReasoningSegInferencer
    torch.set_num_threads(1)
    cfg = Config.fromfile(CONFIG)
    cfg.model.reasoner.update(pretrained=qwen_dir, tiny=None, max_new_tokens=8)
    cfg.model.segmenter.toy_pretrain = None  # plumbing: random weights, no foundation cache
    cfg.model.test_cfg = dict(max_new_tokens=8)
    return ReasoningSegInferencer(cfg)


@pytest.fixture(scope='module')
def image(toy_city_root):
    return osp.join(toy_city_root, 'leftImg8bit', 'val', 'frankfurt',
                    'frankfurt_000000_000019_leftImg8bit.png')


def test_random_reasoner_gives_empty_masks_and_no_box(segzero, image):
    result = segzero(image, ['Segment the car.', 'Segment the sky.'])
    assert result['masks'].shape == (2, 128, 256) and result['masks'].dtype == bool
    assert len(result['texts']) == len(result['reasoning']) == 2
    for box, mask in zip(result['boxes'], result['masks']):
        assert box is not None or not mask.any()  # an unreadable reply: an empty mask
    assert result['visualization'].shape[1] == 256


def test_reply_becomes_box_points_and_mask_in_image_pixels(segzero, image, monkeypatch):
    from mmcora.models.segzero.reasoner import Rollout
    reasoner = segzero.model.reasoner

    def fixed_reply(prompt, g, max_new_tokens=None, greedy=False, **kwargs):
        empty = torch.zeros(g, 1)
        return Rollout(empty.long(), empty.long(), empty, [REPLY] * g)

    monkeypatch.setattr(reasoner, 'sample', fixed_reply)
    segmenter, encoded = segzero.model.segmenter, []
    encode = segmenter.encode
    monkeypatch.setattr(segmenter, 'encode', lambda images: encoded.append(1) or encode(images))
    segzero.reset_image()
    first = segzero(image, 'Segment the car.')
    second = segzero.predict(['Segment the bus.', 'Segment the road.'])
    assert len(encoded) == 1  # one segmenter encoding for the image's three queries
    # canvas 840 -> 256 x 128: x * 256 / 840, y * 128 / 840, clamped to the last pixel
    assert first['boxes'] == [[128, 32, 255, 96]]
    assert first['points'] == [[[152, 61], [213, 64]]]
    assert first['reasoning'] == ['The car is on the right.']
    assert first['texts'] == [REPLY]
    assert first['masks'].shape == (1, 128, 256)
    assert len(second['boxes']) == 2
    # the box is drawn in the first query's colour (its left edge, away from the mask fill)
    overlay = first['visualization']
    assert (overlay[32:97, 128] == (230, 25, 75)).all(-1).sum() > 30


def test_anchors_are_refused_with_the_query_named(segzero, image):
    anchor = np.zeros((128, 256), bool)
    with pytest.raises(ValueError, match="query 0 .*takes no anchor masks; name the anchor"):
        segzero(image, ['Segment the car left of the bus <anchor>.'], anchors=[anchor])
    with pytest.raises(ValueError, match='query 1 .*takes no anchor masks'):
        segzero(image, ['Segment the car.', 'Segment the car left of <anchor>.'])


def test_teacher_forcing_mode_is_refused(segzero, image):
    segzero.set_image(image)
    with pytest.raises(ValueError, match="mode must be None or 'generate'"):
        segzero.model.predict_with_features(*segzero._features, [], mode='teacher_forcing')
