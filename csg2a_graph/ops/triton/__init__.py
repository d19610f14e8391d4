"""Triton kernels (need ``triton``; run on CUDA, or on CPU under ``TRITON_INTERPRET=1`` set before import).

- ``fused_linear_attention()`` — the linear CSG²A layer with ``q`` built on the fly (forward + backward);
- ``FlashGeneAttention`` / ``flash_attention()`` — tiled online-softmax / sigmoid scores (forward + backward);
- ``mean_map_rows()`` — blocks of batch-mean attention maps for ``csg2a_graph.ops.attention_map()``.

PyTorch references: ``csg2a_graph.ops.reference`` and ``csg2a_graph.ops.factorized``.
"""

from csg2a_graph.ops.triton.attention_map import mean_map_rows
from csg2a_graph.ops.triton.flash import FlashGeneAttention, flash_attention
from csg2a_graph.ops.triton.fused_linear import FusedLinearAttention, fused_linear_attention

__all__ = ["fused_linear_attention", "FusedLinearAttention", "FlashGeneAttention", "flash_attention", "mean_map_rows"]
