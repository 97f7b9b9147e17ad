"""The special tokens and text markers every part of mmcora agrees on (one place for each).

``SEG_TOKEN`` is LLaVA's added ``[SEG]`` token, whose last hidden state prompts SAM's mask
decoder; the two anchor tokens are where a conditional instruction's anchor mask and box
embeddings replace token embeddings; ``ANCHOR_PLACEHOLDER`` is how an instruction's text
marks where those two tokens go; ``DEFAULT_ANSWER`` is the answer teacher-forced at test time
(``test_cfg.answer``) and the answer of queries that come without one (ReasonSeg, the
inferencer).
"""
SEG_TOKEN = '[SEG]'
ANCHOR_MASK_TOKEN = '[ANCHOR_MASK]'
ANCHOR_BOX_TOKEN = '[ANCHOR_BOX]'
ANCHOR_PLACEHOLDER = '<anchor>'
DEFAULT_ANSWER = f'{SEG_TOKEN}.'
