"""File-format readers other models can use too: CMap GCT/GCTX, UCSC Xena matrices."""

from csg2a_graph.io.gct import GCT, read_any, read_gct, read_gctx, read_gctx_meta

__all__ = ["GCT", "read_gct", "read_gctx", "read_gctx_meta", "read_any"]
