"""Issue 25.3: the layer in other people's models — a public batched prior, x [B, N] read as one channel, no
host sync or graph break per call (torch.compile fullgraph), float64 attention weights at float64 accuracy."""

import pytest
import torch

from csg2a_graph.data import batched_prior
from csg2a_graph.nn import CSG2AConv
from csg2a_graph.testing import rand_prior


def test_batched_prior_lets_flat_x_share_a_gene_level_prior():
    torch.manual_seed(0)
    B, N = 3, 11
    ei, ew = rand_prior(N, 20)
    conv = CSG2AConv(N, 4)
    x, c = torch.randn(B, N, 1), torch.randn(B, N)
    dense = conv(x, ei, ew, cond=c)
    eib, ewb = batched_prior(ei, ew, B, N)
    assert eib.shape == (2, B * ei.size(1)) and int(eib.max()) < B * N and torch.equal(ewb, ew.repeat(B))
    flat = conv(x.reshape(B * N, 1), eib, ewb, cond=c.reshape(-1))
    torch.testing.assert_close(flat, dense.reshape(B * N, 1))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        batched_prior(ei, ew, 0, N)


def test_dataset_batched_prior(gdsc2):
    ei, ew = gdsc2.batched_prior(4)
    E = gdsc2.prior_edge_index.size(1)
    assert ei.shape == (2, 4 * E) and ew.shape == (4 * E,) and int(ei.max()) == 4 * gdsc2.num_genes - 1


def test_x_samples_by_genes_is_one_channel():
    torch.manual_seed(0)
    B, N = 2, 9
    ei, ew = rand_prior(N, 15)
    conv = CSG2AConv(N, 4)
    x, c = torch.randn(B, N), torch.randn(B, N)
    torch.testing.assert_close(conv(x, ei, ew, cond=c), conv(x[:, :, None], ei, ew, cond=c))
    with pytest.raises(ValueError, match=r"give x\[:, :, None\]"):
        CSG2AConv(N, 4, in_channels=2)(x, ei, ew)


def test_compiles_without_graph_breaks_and_validates_a_prior_once():
    torch.manual_seed(0)
    B, N = 3, 13
    ei, ew = rand_prior(N, 25)
    conv = CSG2AConv(N, 8)
    x, c = torch.randn(B, N, 1), torch.randn(B, N)
    eager = conv(x, ei, ew, cond=c)
    compiled = torch.compile(conv, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(x, ei, ew, cond=c), eager)
    # validated once per prior tensor: the check is keyed on the tensor and its version, so an in-place edit
    # that breaks it is still caught
    assert conv._checked[0] is ei
    ei[0, 0] = N + 5
    with pytest.raises(ValueError, match="refers to node"):
        conv(x, ei, ew, cond=c)


def test_float64_softmax_weights_are_float64_accurate():
    torch.manual_seed(0)
    B, N, h = 2, 40, 8
    ei, ew = rand_prior(N, 60)
    conv = CSG2AConv(N, h, score="softmax").double()
    x, c = torch.randn(B, N, 1, dtype=torch.float64), torch.randn(B, N, dtype=torch.float64)
    _, (_, alpha) = conv(x, ei, ew.double(), cond=c, return_attention_weights=True)
    q = conv.gene_representation(x, c.unsqueeze(-1))
    S = torch.softmax(q @ q.transpose(1, 2) * h**-0.5, dim=-1)
    ref = S[:, ei[1], ei[0]] + ew.double()
    assert alpha.dtype == torch.float64 and (alpha - ref).abs().max() < 1e-12
    from csg2a_graph.ops import attention_map

    m = attention_map(q, None, score="softmax")
    assert m.dtype == torch.float64 and (m - S.mean(0)).abs().max() < 1e-12
