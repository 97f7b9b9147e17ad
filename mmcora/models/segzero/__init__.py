from ...instructions.canvas import SEG_ZERO_CANVAS, CanvasTransform
from ...instructions.point_targets import (SegZeroTarget, inscribed_points, mask_box,
                                           target_from_mask)
from .prompt import seg_zero_prompt, seg_zero_question
from .reply import ParsedReply, parse_reply, seg_zero_answer, seg_zero_box_points
from .rewards import (AnswerFormatReward, BoxIoUReward, BoxL1Reward, PointDistanceReward,
                      RewardTerm, SegZeroReward, ThinkFormatReward, box_iou, trl_reward_function)

__all__ = [
    'AnswerFormatReward', 'BoxIoUReward', 'BoxL1Reward', 'CanvasTransform', 'ParsedReply',
    'PointDistanceReward', 'RewardTerm', 'SEG_ZERO_CANVAS', 'SegZeroReward', 'SegZeroTarget',
    'ThinkFormatReward', 'box_iou', 'inscribed_points', 'mask_box', 'parse_reply',
    'seg_zero_answer', 'seg_zero_box_points', 'seg_zero_prompt', 'seg_zero_question',
    'target_from_mask', 'trl_reward_function'
]
