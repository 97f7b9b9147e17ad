from ...instructions.canvas import SEG_ZERO_CANVAS, CanvasTransform
from ...instructions.point_targets import (SegZeroTarget, inscribed_points, mask_box,
                                           target_from_mask)
from .data_preprocessor import SegZeroDataPreProcessor
from .prompt import seg_zero_prompt, seg_zero_question
from .reasoner import QwenReasoner, Rollout
from .reply import ParsedReply, parse_reply, seg_zero_answer, seg_zero_box_points
from .rewards import (AnswerFormatReward, BoxIoUReward, BoxL1Reward, PointDistanceReward,
                      RewardTerm, SegZeroReward, ThinkFormatReward, box_iou, trl_reward_function)
from .rollout import GRPOLoss, group_advantages, k3_kl
from .segmenter import SAM2Segmenter, SAMPromptSegmenter
from .segmentor import SegZeroSegmentor, target_reply
from .tiny_qwen import ensure_tiny_qwen, write_tiny_qwen
from .tiny_sam2 import ensure_tiny_sam2, write_tiny_sam2

__all__ = [
    'GRPOLoss', 'QwenReasoner', 'Rollout', 'SAM2Segmenter', 'SAMPromptSegmenter',
    'SegZeroDataPreProcessor', 'SegZeroSegmentor', 'ensure_tiny_qwen', 'ensure_tiny_sam2',
    'group_advantages', 'k3_kl', 'target_reply', 'write_tiny_qwen', 'write_tiny_sam2',
    'AnswerFormatReward', 'BoxIoUReward', 'BoxL1Reward', 'CanvasTransform', 'ParsedReply',
    'PointDistanceReward', 'RewardTerm', 'SEG_ZERO_CANVAS', 'SegZeroReward', 'SegZeroTarget',
    'ThinkFormatReward', 'box_iou', 'inscribed_points', 'mask_box', 'parse_reply',
    'seg_zero_answer', 'seg_zero_box_points', 'seg_zero_prompt', 'seg_zero_question',
    'target_from_mask', 'trl_reward_function'
]
