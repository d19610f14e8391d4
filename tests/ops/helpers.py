import torch


def rand_prior(N, E, seed=0, isolated=0, dtype=torch.float32):
    """A random coalesced prior on N genes; the last ``isolated`` genes get no edge."""
    g = torch.Generator().manual_seed(seed)
    M = max(N - isolated, 1)
    ei = torch.randint(0, M, (2, E), generator=g)
    ei = torch.unique(ei, dim=1)
    ew = torch.rand(ei.size(1), generator=g, dtype=dtype) + 0.5
    return ei, ew


def rel_err(a, b):
    """Relative RMS error (flash-linear-attention style)."""
    return ((a - b).float().pow(2).mean().sqrt() / (b.float().pow(2).mean().sqrt() + 1e-12)).item()
