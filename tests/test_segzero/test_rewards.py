"""Seg-Zero's rewards: thresholds at their boundaries, pairing, format rules, the total."""
import json

import pytest

import mmcora  # noqa: F401  registers the rewards
from mmcora.models.segzero import (SegZeroReward, SegZeroTarget, box_iou, seg_zero_answer,
                                   trl_reward_function)
from mmcora.registry import REWARDS

TARGET = SegZeroTarget((100, 100, 199, 199), ((120, 130), (170, 180)))


def reply(box, p1, p2, think='the object on the left'):
    answer = json.dumps(dict(bbox=box, points_1=p1, points_2=p2))
    return f'<think>{think}</think><answer>{answer}</answer>'


def term(name, **kwargs):
    return REWARDS.build(dict(type=name, **kwargs))


PERFECT = reply([100, 100, 199, 199], [120, 130], [170, 180])


def test_a_perfect_reply_scores_the_maximum_five():
    reward = SegZeroReward()
    assert reward.maximum == 5.0
    assert reward(PERFECT, TARGET) == 5.0
    assert set(reward.score_terms(PERFECT, TARGET)) == {
        'ThinkFormatReward', 'AnswerFormatReward', 'BoxIoUReward', 'BoxL1Reward',
        'PointDistanceReward'
    }


def test_box_iou_exactly_half_scores_zero():
    half = [100, 100, 199, 149]  # 100 x 50 inclusive pixels inside the 100 x 100 target
    assert box_iou(half, TARGET.box) == 0.5
    assert term('BoxIoUReward')(reply(half, [120, 130], [150, 140]), TARGET) == 0.0
    assert term('BoxIoUReward')(reply([100, 100, 199, 150], [120, 130], [150, 140]), TARGET) == 1.0
    assert term('BoxIoUReward', soft=True)(reply(half, [1, 1], [1, 1]), TARGET) == 0.5


def test_box_l1_exactly_ten_scores_zero():
    shifted = [110, 110, 209, 209]
    assert term('BoxL1Reward')(reply(shifted, [120, 130], [170, 180]), TARGET) == 0.0
    assert term('BoxL1Reward')(reply([109, 109, 208, 208], [1, 1], [1, 1]), TARGET) == 1.0
    assert term(
        'BoxL1Reward', soft=True, canvas=840)(reply(shifted, [1, 1], [1, 1]),
                                              TARGET) == pytest.approx(1 - 10 / 840)


def test_point_distance_exactly_hundred_scores_zero():
    box = [0, 0, 839, 839]  # both points inside the predicted box
    at_100 = reply(box, [180, 210], [230, 260])  # each point (60, 80) away: distance 100
    assert term('PointDistanceReward')(at_100, TARGET) == 0.0
    assert term('PointDistanceReward')(reply(box, [179, 210], [230, 259]), TARGET) == 1.0
    assert term('PointDistanceReward', threshold=101.)(at_100, TARGET) == 1.0


def test_point_pairs_are_order_invariant():
    forward = reply([100, 100, 199, 199], [120, 130], [170, 180])
    backward = reply([100, 100, 199, 199], [170, 180], [120, 130])
    for soft in (False, True):
        rule = term('PointDistanceReward', soft=soft)
        assert rule(forward, TARGET) == rule(backward, TARGET) == 1.0


def test_points_outside_the_predicted_box_score_zero():
    # the points are right, but the predicted box does not contain the second one
    outside = reply([100, 100, 160, 160], [120, 130], [170, 180])
    assert term('PointDistanceReward')(outside, TARGET) == 0.0
    assert term('PointDistanceReward', soft=True)(outside, TARGET) == 0.0


def test_braces_inside_think_break_the_answer_as_in_seg_zero():
    text = reply([100, 100, 199, 199], [120, 130], [170, 180], think='a set {car, bus} here')
    assert seg_zero_answer(text) is None
    terms = SegZeroReward().score_terms(text, TARGET)
    assert terms['ThinkFormatReward'] == 1.0
    assert all(terms[k] == 0.0 for k in terms if k != 'ThinkFormatReward')


def test_the_single_quoted_prompt_example_scores_zero_on_every_json_term():
    example = ("<think> thinking process here </think><answer>{'bbox': [10,100,200,210], "
               "'points_1': [30,110], 'points_2': [35,180]}</answer>")
    target = SegZeroTarget((10, 100, 200, 210), ((30, 110), (35, 180)))
    terms = SegZeroReward().score_terms(example, target)
    assert terms == {
        'ThinkFormatReward': 1.0,
        'AnswerFormatReward': 0.0,
        'BoxIoUReward': 0.0,
        'BoxL1Reward': 0.0,
        'PointDistanceReward': 0.0
    }


@pytest.mark.parametrize(
    'text',
    [
        'I think it is the car. ' + PERFECT,  # text before <think>
        PERFECT + ' Done.',  # text after </answer>
        PERFECT.replace('</think>', ''),
        PERFECT.replace('<answer>', '<answer >'),
    ])
def test_think_format_is_exact(text):
    assert term('ThinkFormatReward')(text, TARGET) == 0.0


def test_answer_format_strict_and_soft():
    renamed = ('<think>x</think><answer>{"bbox_2d": [1, 2, 3, 4], "point_a": [1, 2], '
               '"point_b": [3, 4]}</answer>')
    assert term('AnswerFormatReward', strict=True)(renamed, TARGET) == 0.0
    assert term('AnswerFormatReward', strict=False)(renamed, TARGET) == 1.0
    short = reply([1, 2, 3], [1, 2], [3, 4])
    for strict in (True, False):
        assert term('AnswerFormatReward', strict=strict)(short, TARGET) == 0.0
        assert term('AnswerFormatReward', strict=strict)(PERFECT, TARGET) == 1.0


@pytest.mark.parametrize(
    'text',
    [
        '',
        'no answer at all',
        '<answer>{"bbox": "left"}</answer>',
        '<answer>{"bbox": [1, 2, 3, 4], "points_1": [1]}</answer>',
        '<answer>{"bbox": [null, 2, 3, 4], "points_1": [1, 2], '
        '"points_2": [3, 4]}</answer>',
        # json.loads reads NaN, Infinity and 1e999 (inf): no number a box can use
        '<answer>{"bbox": [NaN, 100, 199, 199], "points_1": [120, 130], '
        '"points_2": [170, 180]}</answer>',
        '<answer>{"bbox": [100, 100, 199, Infinity], "points_1": [120, 130], '
        '"points_2": [170, 180]}</answer>',
        '<answer>{"bbox": [100, 100, 199, 199], "points_1": [1e999, 130], '
        '"points_2": [170, 180]}</answer>',
    ])
def test_malformed_replies_score_zero_and_never_raise(text):
    terms = SegZeroReward().score_terms(text, TARGET)
    accuracy = ('BoxIoUReward', 'BoxL1Reward', 'PointDistanceReward')
    assert all(terms[k] == 0.0 for k in accuracy) and terms['ThinkFormatReward'] == 0.0
    # Seg-Zero's format rule counts values, not their types: [null, 2, 3, 4] is a format
    assert terms['AnswerFormatReward'] == float(
        any(v in text for v in ('null', 'NaN', 'Inf', 'e999')))
    assert all(v == v for v in terms.values())  # never NaN


def test_weights_and_duplicate_terms_from_config():
    reward = SegZeroReward(terms=[
        dict(type='ThinkFormatReward', weight=0.5),
        dict(type='BoxIoUReward', threshold=0.9, weight=2.0)
    ])
    assert reward.maximum == 2.5
    assert reward(PERFECT, TARGET) == 2.5
    with pytest.raises(ValueError, match='BoxIoUReward is listed twice'):
        SegZeroReward(terms=[dict(type='BoxIoUReward'), dict(type='BoxIoUReward')])
    with pytest.raises(KeyError, match='NoSuchReward'):
        SegZeroReward(terms=[dict(type='NoSuchReward')])


def test_trl_adapter_reads_plain_and_conversational_completions():
    fn = trl_reward_function(SegZeroReward())
    worse = reply([0, 0, 20, 20], [5, 5], [6, 6])
    scores = fn(
        prompts=['p'] * 3,
        completions=[PERFECT, [{
            'role': 'assistant',
            'content': PERFECT
        }], worse],
        bbox=[TARGET.box] * 3,
        points=[TARGET.points] * 3,
        image=[None] * 3)
    assert scores == [5.0, 5.0, 2.0]
    assert fn.__name__ == 'seg_zero_reward'


def test_prompt_is_seg_zero_s_and_its_example_is_not_json():
    from mmcora.models.segzero.prompt import EXAMPLE_ANSWER_JSON, seg_zero_prompt
    prompt = seg_zero_prompt('Segment the car left of the bus.')
    assert prompt.startswith("Please find 'segment the car left of the bus' with bbox and "
                             'points.Compare the difference')
    assert prompt.endswith("<answer>{'bbox': [10,100,200,210], 'points_1': [30,110], "
                           "'points_2': [35,180]}</answer>")
    assert seg_zero_answer(prompt) is None  # what a copying reasoner would be scored on
    assert json.loads(EXAMPLE_ANSWER_JSON)['points_2'] == [35, 180]
    assert seg_zero_prompt(
        'x', json_example=True).endswith(f'<answer>{EXAMPLE_ANSWER_JSON}</answer>')
