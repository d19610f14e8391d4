"""Test helpers shared by the test suite (and useful to users testing their own models on this package):
skip decorators for missing hardware or packages, and a dtype-aware ``assert_close``.
"""

from __future__ import annotations

import importlib.util
import os

import torch

#: tolerances for comparing a fast path with its fp32 reference, by the fast path's dtype
TOLERANCES = {
    torch.float32: (1e-4, 1e-5),
    torch.float64: (1e-7, 1e-9),
    torch.bfloat16: (2e-2, 2e-2),
    torch.float16: (5e-3, 5e-3),
}


def has_package(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def withCUDA(fn):  # noqa: N802 - PyG's spelling
    """Skip unless a CUDA device is present."""
    import pytest

    return pytest.mark.gpu(pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")(fn))


def withPackage(*names: str):  # noqa: N802 - PyG's spelling
    """Skip unless every package in ``names`` is importable."""
    import pytest

    missing = [n for n in names if not has_package(n)]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)}")


def onlyTritonRunnable(fn):  # noqa: N802
    """Skip unless Triton kernels can run: CUDA, or ``TRITON_INTERPRET=1`` set before import."""
    import pytest

    ok = has_package("triton") and (torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1")
    return pytest.mark.skipif(not ok, reason="needs Triton and CUDA (or TRITON_INTERPRET=1)")(fn)


def rand_prior(N: int, E: int, seed: int = 0, isolated: int = 0, dtype=torch.float32):
    """A random coalesced prior on ``N`` genes; the last ``isolated`` genes get no edge."""
    g = torch.Generator().manual_seed(seed)
    M = max(N - isolated, 1)
    ei = torch.unique(torch.randint(0, M, (2, E), generator=g), dim=1)
    return ei, torch.rand(ei.size(1), generator=g, dtype=dtype) + 0.5


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Relative RMS error (flash-linear-attention style)."""
    return ((a - b).float().pow(2).mean().sqrt() / (b.float().pow(2).mean().sqrt() + 1e-12)).item()


def assert_close(actual: torch.Tensor, expected: torch.Tensor, dtype=None, msg=None, **kw) -> None:
    """``torch.testing.assert_close`` with tolerances picked by ``dtype`` (default: ``actual``'s),
    comparing in float32 so a bf16 result can be checked against an fp32 reference.
    """
    rtol, atol = TOLERANCES.get(dtype or actual.dtype, (1e-4, 1e-5))
    kw.setdefault("rtol", rtol)
    kw.setdefault("atol", atol)
    torch.testing.assert_close(actual.float(), expected.float(), msg=msg, **kw)


__all__ = [
    "withCUDA",
    "withPackage",
    "onlyTritonRunnable",
    "assert_close",
    "has_package",
    "TOLERANCES",
    "rand_prior",
    "rel_err",
]
