r"""Functional CSG²A gene-gene attention: one definition, several exact paths.

$$
S_b = \phi(q_b q_b^\top \cdot \mathrm{scale}) + A, \qquad
\mathrm{out}_b = S_b x_b \;(\texttt{matmul}) \;\text{ or }\;
\mathrm{out}_{b,i} = x_{b,i} \textstyle\sum_j S_{b,ij} \;(\texttt{rowsum})
$$

Paths (``impl=``) and when ``csg2a_attention()`` picks them:

==============  =====================================  ==========================================
``impl``        computes                               picked for
==============  =====================================  ==========================================
``factorized``  ``q (q^T x) scale + A x``; O(BNh+E)    ``score="linear"``, ``support="dense"``
``chunked``     row blocks under checkpointing         non-linear dense scores on CPU
``triton``      flash kernel (online softmax)          non-linear dense scores on CUDA
``edgewise``    SDDMM over prior edges + scatter       ``support="prior"``
``reference``   materialises ``[B, N, N]``             never (tests, tiny N)
==============  =====================================  ==========================================

The paper's layer builds ``q = x ⊙ W_gene + c ⊙ W_cond`` from per-gene weights. For it,
``csg2a_graph.nn.CSG2AConv`` never forms ``q`` either: on CPU
(``csg2a_graph.ops.factorized.expanded_linear()``) the contraction folds into four
``[B, N] x [N, h]`` GEMMs; on CUDA the fused Triton kernel
(``csg2a_graph.ops.triton.fused_linear_attention()``) builds ``q`` tile by tile in registers.
"""

from csg2a_graph.ops.attention import IMPLS, choose_impl, csg2a_attention, triton_usable
from csg2a_graph.ops.attention_map import attention_map

__all__ = ["csg2a_attention", "attention_map", "choose_impl", "triton_usable", "IMPLS"]
