"""Names the command line needs before anything heavy is imported (no torch here): ``csg2a --help``
and argument errors answer at once."""

#: attribution methods of :func:`csg2a_graph.explain.explain_genes`
EXPLAIN_METHODS = ("ig", "saliency", "inputxgradient", "deeplift", "deepliftshap", "gradientshap", "ablation",
                   "layer-ig")
