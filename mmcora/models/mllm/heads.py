"""Small trainable heads around the language model: [SEG] projector and anchor encoders."""
import torch
import torch.nn as nn
from mmseg.registry import MODELS


@MODELS.register_module()
class SegTokenProjector(nn.Module):
    """[SEG] hidden state (D) -> one SAM sparse prompt (P): Linear-ReLU-Linear, as LISA.

    Args:
        in_dim (int): Language-model hidden size D.
        out_dim (int): SAM prompt dimension P (256 for SAM).
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_dim, in_dim), nn.ReLU(inplace=True), nn.Linear(in_dim, out_dim))

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """(Q, D) -> (Q, P)."""
        return self.layers(states)


@MODELS.register_module()
class AnchorEncoder(nn.Module):
    """SegLLM-style anchor encodings added to the two anchor placeholder tokens.

    Mask: the CLIP CLS feature of the anchor's masked crop through an MLP. Box: a linear layer
    on the normalised box (x0, y0, x1, y1) / (W, H, W, H).

    Args:
        clip_dim (int): CLIP vision hidden size C.
        hidden_size (int): Language-model hidden size D.
    """

    def __init__(self, clip_dim: int, hidden_size: int) -> None:
        super().__init__()
        self.mask_proj = nn.Sequential(
            nn.Linear(clip_dim, hidden_size), nn.GELU(), nn.Linear(hidden_size, hidden_size))
        self.box_proj = nn.Linear(4, hidden_size)

    def forward(self, cls_features: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """(A, C) CLS features and (A, 4) boxes -> (A, 2, D) mask and box encodings."""
        return torch.stack([self.mask_proj(cls_features), self.box_proj(boxes)], dim=1)
