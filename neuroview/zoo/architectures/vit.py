"""A small Vision Transformer of the zoo: the transformer family, with its own class-token head.

Patch embedding (a Conv2d with stride = patch), a learned class token, learned position
embeddings, pre-norm encoder blocks (LayerNorm, multi-head self-attention, LayerNorm, MLP
Linear-GELU-Linear, each with a residual), a final LayerNorm and a Linear head on the class
token (Dosovitskiy et al., "An Image is Worth 16x16 Words", 2021).

The image size is not fixed at build time: the position embeddings are learned on the grid of
``img_size`` and interpolated (bicubic, as timm's ``dynamic_img_size``) to any other grid.

Its NeuroView sites are the MLPs' GELU calls, one per block, on tokens ``[B, N, hidden]``: the
units are the hidden features (the last dim) and their codes are averaged over the tokens,
the class token included. May import torch and its sibling ``.cnn`` only.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .cnn import _count  # an int >= 1, numpy's too, no bool: the CNNs' own check


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    """``img_size`` as (height, width): one positive int or two (8.0 met a bare "'float' object is not subscriptable")."""
    pair = tuple(v) if isinstance(v, (tuple, list)) or getattr(v, "ndim", None) == 1 else (v, v)  # an array's too
    try:
        if len(pair) != 2:
            raise ValueError
        return _count(pair[0], "img_size"), _count(pair[1], "img_size")
    except ValueError:
        raise ValueError(f"img_size: expected a positive int or two (height, width), got {v!r}") from None


def _real(v) -> bool:
    """A real number, numpy's too (np.float32(2.0) was refused), not a bool."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and type(v).__name__ != "bool_"


def _check_widths(dim: int, mlp_ratio, dropout) -> None:
    """The MLP's hidden width ``int(dim * mlp_ratio)`` at least 1 (0 failed at the first batch, a negative one in
    torch's tensor factory), dropout a probability below 1."""
    if not _real(mlp_ratio) or not (math.isfinite(mlp_ratio) and int(dim * mlp_ratio) >= 1):
        raise ValueError(f"mlp_ratio: expected a number with int(dim * mlp_ratio) >= 1 (the MLP's hidden width; "
                         f"dim {dim}), got {mlp_ratio!r}")
    if not _real(dropout) or not 0 <= dropout < 1:
        raise ValueError(f"dropout: expected a number in [0, 1), got {dropout!r}")


class MLP(nn.Module):
    """Linear - GELU - Linear (the GELU is a module, so NeuroViewCNN finds it)."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Block(nn.Module):
    """Pre-norm encoder block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, int(dim * mlp_ratio), dropout)

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """A Vision Transformer classifying from its class token.

    Args:
        in_channels, num_classes: the data's channels and classes.
        img_size: the image size the position embeddings are learned at (int or ``(H, W)``);
            other sizes that the patch divides are accepted and interpolate them.
        patch_size: side of a square patch (the patch embedding's kernel and stride).
        dim, depth, heads, mlp_ratio: token width, number of blocks, attention heads, and the
            MLP's hidden width as a multiple of ``dim``.
        dropout: dropout in attention and MLP (0 by default).

    >>> ViT(in_channels=1, num_classes=10, img_size=8, patch_size=2)(torch.randn(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    >>> ViT(in_channels=1, num_classes=10, img_size=8, patch_size=2)(torch.randn(2, 1, 12, 16)).shape
    torch.Size([2, 10])
    """

    def __init__(self, *, in_channels: int = 1, num_classes: int = 10, img_size: int | tuple[int, int] = 8,
                 patch_size: int = 2, dim: int = 64, depth: int = 4, heads: int = 4, mlp_ratio: float = 2.0,
                 dropout: float = 0.0):
        super().__init__()
        size = _pair(img_size)
        # heads=0 met a bare modulo by zero, depth=0 built no block (no site)
        patch_size, dim, depth, heads = (_count(v, n) for n, v in (("patch_size", patch_size), ("dim", dim),
                                                                  ("depth", depth), ("heads", heads)))
        if any(s % patch_size for s in size):
            raise ValueError(f"patch_size: expected a positive divisor of img_size {size}, got {patch_size!r}")
        if dim % heads:
            raise ValueError(f"heads: expected a divisor of dim {dim}, got {heads!r}")
        _check_widths(dim, mlp_ratio, dropout)
        self.patch_size = patch_size
        self.grid = (size[0] // patch_size, size[1] // patch_size)
        self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid[0] * self.grid[1], dim))
        self.blocks = nn.Sequential(*(Block(dim, heads, mlp_ratio, dropout) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def position_embedding(self, grid: tuple[int, int]) -> Tensor:
        """``[1, 1 + H * W, dim]``: the class token's embedding, then the patches' on ``grid``."""
        if grid == self.grid:
            return self.pos_embed
        cls, patches = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        dim = patches.shape[-1]
        patches = patches.reshape(1, *self.grid, dim).permute(0, 3, 1, 2)
        patches = F.interpolate(patches, size=grid, mode="bicubic", align_corners=False)
        return torch.cat([cls, patches.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], dim)], dim=1)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[-2] % self.patch_size or x.shape[-1] % self.patch_size:
            raise ValueError(f"x: expected images [B, C, H, W] with H and W multiples of {self.patch_size}, "
                             f"got shape {tuple(x.shape)}")
        x = self.patch_embed(x)  # [B, dim, H/p, W/p]
        grid = (x.shape[-2], x.shape[-1])
        x = x.flatten(2).transpose(1, 2)  # [B, N, dim]
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1) + self.position_embedding(grid)
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])
