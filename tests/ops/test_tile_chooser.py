"""Issue 28.1 (CPU part): the fused kernels' pipeline stages are chosen within the device's shared memory, and a
launch that still runs out of it retries with fewer stages, then refuses in one line (the GPU sizes B = 4096,
16,384 and N = 20,000 are in benchmarks/kernels/gpu_check.py, to run where a GPU is lent)."""

import pytest
import torch

pytest.importorskip("triton")

from csg2a_graph.ops.triton._utils import choose_stages, launch, loop_smem, operand_bytes  # noqa: E402
from csg2a_graph.ops.triton.fused_linear import _config  # noqa: E402

H100 = 232_448  # bytes of shared memory per block (H100/H200); the B >= 2560 fp32 crash asked for 262,144


@pytest.mark.parametrize("limit", [None, 49_152, 101_376, 166_912, H100])
@pytest.mark.parametrize("dtype,prec", [(torch.float32, "tf32x3"), (torch.float32, "tf32"), (torch.bfloat16, "tf32")])
def test_stages_fit_every_size_and_limit(limit, dtype, prec):
    for B in (1, 16, 64, 2048, 2560, 4096, 16_384):
        for N in (978, 20_000):
            for h in (16, 64, 256):
                bb, bn, bh = _config(B, N, h)
                tile = max(bb, bn)
                s = choose_stages(tile, tile, bh, operand_bytes(dtype, prec), limit)
                assert 1 <= s <= 3
                if limit is None:
                    assert s == 3
                elif s > 1:  # more than one stage only when it fits; one stage is the floor
                    assert loop_smem(tile, tile, bh, operand_bytes(dtype, prec), s) <= limit


def test_the_crashing_size_now_gets_fewer_stages_in_fp32_and_three_in_bf16():
    bb, bn, bh = _config(4096, 978, 64)
    assert choose_stages(max(bb, bn), max(bb, bn), bh, operand_bytes(torch.float32, "tf32x3"), H100) < 3
    assert choose_stages(max(bb, bn), max(bb, bn), bh, operand_bytes(torch.bfloat16, "tf32"), H100) == 3


class _Kernel:
    """A stand-in for a compiled Triton kernel that needs one stage to fit."""

    __name__ = "_fake_kernel"

    def __init__(self, fits_at: int):
        self.fits_at, self.tried = fits_at, []

    def __getitem__(self, grid):
        def run(*args, num_stages, **kw):
            from triton.runtime.errors import OutOfResources

            self.tried.append(num_stages)
            if num_stages > self.fits_at:
                raise OutOfResources(262_144, H100, "shared memory")
            return "ran"

        return run


def test_launch_retries_with_fewer_stages_then_refuses_clearly():
    k = _Kernel(fits_at=1)
    assert launch(k, (1,), stages=3, BLOCK_B=64) == "ran" and k.tried == [3, 2, 1]
    never = _Kernel(fits_at=0)
    with pytest.raises(RuntimeError, match="_fake_kernel needs more shared memory .* use bf16 inputs"):
        launch(never, (1,), stages=2, BLOCK_B=64)


def test_the_gpu_check_script_runs_dry():
    """benchmarks/kernels/gpu_check.py is ready for a GPU machine: its --dry-run runs the same path on the CPU."""
    import subprocess
    import sys

    from tests.conftest import REPO

    r = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "kernels" / "gpu_check.py"), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("| yes |") == 4 and "# amp:" in r.stdout and "(ok)" in r.stdout
