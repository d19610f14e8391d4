"""DeepTTA (Jiang et al., Briefings in Bioinformatics 2022): a transformer over the drug's ESPF
substructure tokens and an MLP over the cell's expression. Written from ``docs/baselines.md`` (DeepTTA).
"""

from __future__ import annotations

import os
import os.path as osp
import subprocess
import sys
import tarfile
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from csg2a_graph.baselines.deep import register_deep
from csg2a_graph.nn.models.base import ResponseModel, register_model

ESPF_FILES = {
    "codes": ("drug_codes_chembl_freq_1500.txt", "27140b911773852cc106337499df351cd46907a1d2c3ba1cdde3c87f17d33bad"),
    "vocab": (
        "subword_units_map_chembl_freq_1500.csv",
        "c9ce17db965b49f17d2ac42c5a00eb3b9b066e62e603a2ca6bd3ffb94e6c4ae9",
    ),
}
# the ESPF vocabulary ships inside the DeepPurpose 0.1.5 sdist on PyPI (BSD-3-Clause)
DEEPPURPOSE_SDIST = ("DeepPurpose-0.1.5.tar.gz", "a912300c004954d3b8a32d8ca7cec1ebfe021bfa11dbb7f1e653ebe00c124094")


def find_espf(directory: Optional[str] = None, download: bool = True) -> str:
    """The folder with the two ESPF files (sha256-checked): ``directory``, ``$CSG2A_ESPF_DIR``, the user
    cache, or extracted from the DeepPurpose 0.1.5 sdist fetched with pip from PyPI.
    """
    from csg2a_graph.io.files import sha256, user_cache_dir

    def ok(d):
        return d and all(osp.exists(osp.join(d, f)) and sha256(osp.join(d, f)) == h for f, h in ESPF_FILES.values())

    for d in (directory, os.environ.get("CSG2A_ESPF_DIR")):
        if d and not ok(d):
            raise FileNotFoundError(
                f"{d}: expected the ESPF files {[f for f, _ in ESPF_FILES.values()]} "
                "(sha256-checked, from DeepPurpose 0.1.5)"
            )
        if d:
            return d
    cache = osp.join(user_cache_dir(), "espf")
    if ok(cache):
        return cache
    if not download:
        raise FileNotFoundError("ESPF vocabulary not found: set CSG2A_ESPF_DIR or allow the download from PyPI")
    os.makedirs(cache, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary=:all:",
        "--no-build-isolation",
        "DeepPurpose==0.1.5",
        "-d",
        cache,
    ]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    except Exception as e:  # noqa: BLE001 - no network or pip failure: say what to do
        raise FileNotFoundError(
            f"could not fetch DeepPurpose 0.1.5 from PyPI for the ESPF vocabulary ({e}); "
            "set CSG2A_ESPF_DIR to a folder with the two files"
        ) from None
    sdist = osp.join(cache, DEEPPURPOSE_SDIST[0])
    if sha256(sdist) != DEEPPURPOSE_SDIST[1]:
        raise ValueError(f"{sdist}: sha256 does not match the pinned DeepPurpose 0.1.5 sdist")
    with tarfile.open(sdist) as t:
        for f, _ in ESPF_FILES.values():
            member = t.getmember(f"DeepPurpose-0.1.5/DeepPurpose/ESPF/{f}")
            with t.extractfile(member) as src, open(osp.join(cache, f), "wb") as dst:
                dst.write(src.read())
    if not ok(cache):
        raise ValueError(f"{cache}: extracted ESPF files fail the sha256 check")
    return cache


class ESPFTokenizer:
    """SMILES -> ``(ids [max_len], mask [max_len])`` with DeepTTA's rules: subword-nmt BPE with the ESPF
    codes, token id = row of the vocabulary table (2,586 tokens), truncation to ``max_len`` (50), padding
    with id 0 (which is also the real token "7"; the mask tells them apart); a sequence with any
    out-of-vocabulary token becomes ``[0]`` as in the original (counted in ``oov``).
    """

    def __init__(self, directory: Optional[str] = None, max_len: int = 50):
        import codecs

        import pandas as pd
        from subword_nmt.apply_bpe import BPE

        d = find_espf(directory)
        with codecs.open(osp.join(d, ESPF_FILES["codes"][0])) as f:
            self.bpe = BPE(f, merges=-1, separator="")
        vocab = pd.read_csv(osp.join(d, ESPF_FILES["vocab"][0]))["index"].astype(str).tolist()
        self.index = {t: i for i, t in enumerate(vocab)}
        self.vocab_size, self.max_len, self.oov = len(vocab), max_len, 0

    def __call__(self, smiles: str) -> Tuple[Tensor, Tensor]:
        tokens = self.bpe.process_line(smiles).split()
        try:
            ids = [self.index[t] for t in tokens]
        except KeyError:
            ids = [0]
            self.oov += 1
        ids = ids[: self.max_len]
        mask = [1] * len(ids) + [0] * (self.max_len - len(ids))
        return torch.tensor(ids + [0] * (self.max_len - len(ids))), torch.tensor(mask, dtype=torch.bool)


@register_model("deeptta")
class DeepTTA(ResponseModel):
    r"""DeepTTA: `Jiang et al., "DeepTTA: a transformer-based model for predicting cancer drug response",
    Briefings in Bioinformatics 23(3) 2022 <https://doi.org/10.1093/bib/bbac100>`_.

    - drug: ESPF tokens (``ESPFTokenizer``) -> token + position embeddings (128) -> LayerNorm ->
      dropout -> 8 post-LN transformer encoder layers (8 heads, FFN 512, ReLU, dropout 0.1) -> the hidden
      state at position 0 (the first token; there is no CLS token);
    - cell: MLP G -> 1024 -> 256 -> 64 -> 256 with ReLU after every layer;
    - head: 384 -> 1024 -> 1024 -> 512 -> 1, dropout 0.1 before each ReLU.

    Choices: ``torch.nn.TransformerEncoderLayer`` (LayerNorm eps 1e-5 and a boolean padding mask instead
    of the original's eps 1e-12 and additive -10000); the cell input is the package's expression vector.
    Targets are standardised internally. 5.19 M parameters at 978 genes (as the spec).
    """

    def __init__(
        self,
        genes: Union[int, Sequence[str]],
        d_model: int = 128,
        layers: int = 8,
        heads: int = 8,
        ffn: int = 512,
        dropout: float = 0.1,
        max_len: int = 50,
        vocab_size: int = 2586,
        espf_dir: Optional[str] = None,
    ):
        super().__init__()
        n = genes if isinstance(genes, int) else len(genes)
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = nn.Embedding(max_len, d_model)
        self.emb_norm, self.emb_drop = nn.LayerNorm(d_model), nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(d_model, heads, ffn, dropout, activation="relu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.cell = nn.Sequential(
            nn.Linear(n, 1024),
            nn.ReLU(),
            nn.Linear(1024, 256),
            nn.ReLU(),
            nn.Linear(256, 64),
            nn.ReLU(),
            nn.Linear(64, 256),
            nn.ReLU(),
        )
        self.head = nn.Sequential(
            nn.Linear(d_model + 256, 1024),
            nn.Dropout(dropout),
            nn.ReLU(),
            nn.Linear(1024, 1024),
            nn.Dropout(dropout),
            nn.ReLU(),
            nn.Linear(1024, 512),
            nn.Dropout(dropout),
            nn.ReLU(),
            nn.Linear(512, 1),
        )
        self.register_buffer("y_mean", torch.zeros(()))
        self.register_buffer("y_std", torch.ones(()))
        self.max_len, self.espf_dir = max_len, espf_dir
        self._tokenizer: Optional[ESPFTokenizer] = None
        self._tokens: Dict[str, Tuple[Tensor, Tensor]] = {}
        self.save_hparams(
            genes=genes if isinstance(genes, int) else list(genes),
            d_model=d_model,
            layers=layers,
            heads=heads,
            ffn=ffn,
            dropout=dropout,
            max_len=max_len,
            vocab_size=vocab_size,
            espf_dir=espf_dir,
        )

    def tokens(self, smiles: Sequence[str]) -> Tuple[Tensor, Tensor]:
        """``(ids [D, L], mask [D, L])`` of the distinct drugs, tokenised once per SMILES."""
        for s in smiles:
            if s not in self._tokens:
                if self._tokenizer is None:
                    self._tokenizer = ESPFTokenizer(self.espf_dir, self.max_len)
                self._tokens[s] = self._tokenizer(s)
        ids = torch.stack([self._tokens[s][0] for s in smiles])
        mask = torch.stack([self._tokens[s][1] for s in smiles])
        return ids, mask

    def encode_drugs(self, drug_graph) -> Tensor:
        dev = self.tok_emb.weight.device
        ids, mask = (t.to(dev) for t in self.tokens(list(drug_graph.smiles)))
        pos = torch.arange(ids.size(1), device=dev)
        h = self.emb_drop(self.emb_norm(self.tok_emb(ids) + self.pos_emb(pos)))
        h = self.encoder(h, src_key_padding_mask=~mask)
        return h[:, 0]

    def forward(
        self, expr: Tensor, drug_graph, drug_index: Tensor, dose: Optional[Tensor] = None, time: Optional[Tensor] = None
    ) -> Tensor:
        d = self.encode_drugs(drug_graph)[drug_index]  # each distinct drug once per batch
        out = self.head(torch.cat([d, self.cell(expr)], dim=1)).squeeze(-1)
        return out * self.y_std + self.y_mean


register_deep("deeptta", train={"lr": 1e-4, "batch_size": 64})

__all__ = ["DeepTTA", "ESPFTokenizer", "find_espf"]
