"""What the three Triton kernels (fused linear, flash, map) share: dot precision and score ids."""
from __future__ import annotations

import torch

# score -> constexpr id used inside kernels
SCORE_ID = {"linear": 0, "softmax": 1, "sigmoid": 2}


def dot_precision(dtype) -> str:
    """Dot precision for fp32 inputs: with torch's TF32 switch off (its default) use 3xTF32,
    which keeps fp32 accuracy on tensor cores; with it on, plain TF32 like torch.matmul."""
    if dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32:
        return "tf32x3"
    return "tf32"


__all__ = ["SCORE_ID", "dot_precision"]
