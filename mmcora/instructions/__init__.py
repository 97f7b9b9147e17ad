"""Instruction engine: turns semantic label maps into reasoning-segmentation instructions."""
from .builder import LAYOUTS, build_instruction_set, default_output, load_label_map
from .canvas import SEG_ZERO_CANVAS, CanvasTransform
from .engine import Draft, InstructionEngine
from .objects import SceneObject, decode_rle, encode_rle, extract_objects, mask_bbox
from .point_targets import SegZeroTarget, inscribed_points, mask_box, target_from_mask
from .query_bank import QueryBank
from .records import (ImageInstructions, InstructionFileError, ObjectRef, Query,
                      read_instruction_file, write_instruction_file)
from .relations import RelationRules, relations_between, unique_relations

__all__ = [
    'LAYOUTS', 'SEG_ZERO_CANVAS', 'CanvasTransform', 'SegZeroTarget', 'inscribed_points',
    'mask_box', 'target_from_mask', 'Draft', 'ImageInstructions', 'InstructionEngine',
    'InstructionFileError', 'ObjectRef', 'Query', 'QueryBank', 'RelationRules', 'SceneObject',
    'build_instruction_set', 'decode_rle', 'default_output', 'encode_rle', 'extract_objects',
    'load_label_map', 'mask_bbox', 'read_instruction_file', 'relations_between', 'unique_relations',
    'write_instruction_file'
]
