"""Names the command line needs before anything heavy is imported (no torch here): ``csg2a --help``
and argument errors answer at once.
"""

#: attribution methods of ``csg2a_graph.explain.explain_genes()``
EXPLAIN_METHODS = (
    "ig",
    "saliency",
    "inputxgradient",
    "deeplift",
    "deepliftshap",
    "gradientshap",
    "ablation",
    "layer-ig",
)

#: split schemes of ``csg2a_graph.data.splits.make_split()`` (drevalpy's LPO/LCO/LDO/LTO aliases also accepted)
SCHEMES = ("mixed", "cell_blind", "drug_blind", "disjoint", "tissue_blind")

#: every runner ``csg2a_graph.train.cv.load_builtin_runners()`` registers (a test keeps the two equal)
MODEL_RUNNERS = (
    "csg2a",
    "rf",
    "gbm",
    "elastic-net",
    "svm",
    "svm-exact",
    "global-mean",
    "drug-mean",
    "cell-mean",
    "additive",
    "tissue-mean",
    "graphdrp",
    "deeptta",
    "pathdnn",
    "precily",
    "drpreter",
    "deepcovdr",
    "gene-graph",
    "gene-gcn",
    "gene-gat",
    "gene-gin",
    "gene-csg2a",
    "gene-csg2a+gcn",
)

#: the deep baselines (their papers' learning rate and batch size; one search space for tuning)
DEEP_BASELINES = (
    "graphdrp",
    "deeptta",
    "pathdnn",
    "precily",
    "drpreter",
    "deepcovdr",
    "gene-gcn",
    "gene-gat",
    "gene-gin",
    "gene-csg2a",
    "gene-csg2a+gcn",
)

#: randomisation tests of ``csg2a cv --randomize`` (``csg2a_graph.train.randomize``; a test keeps them equal)
RANDOMIZATIONS = ("cell-permute", "cell-noise", "drug-permute", "prior-rewire", "prior-remove", "pretrain-untrained")

#: named CSG2A variants (``csg2a_graph.nn.models.csg2a.VARIANTS``): the released code's function, the paper's
#: written equation, and this package's changes; the first is the default
VARIANTS = ("released", "paper", "improved")

#: drug encoders of the CSG2A condition encoder (``auto``: pretrained-gcn when its weights are found)
DRUG_ENCODERS = ("pretrained-gcn", "gin", "morgan", "mat", "precomputed")

#: ``csg2a_graph.train.TrainConfig``'s defaults (the released fine-tuning's), shared with the CLI flags
TRAIN_DEFAULTS: dict = {
    "epochs": 100,
    "batch_size": 128,
    "lr": 1e-4,
    "weight_decay": 1e-5,
    "min_lr": 1e-5,
    "patience": 20,
    "seed": 0,
}
