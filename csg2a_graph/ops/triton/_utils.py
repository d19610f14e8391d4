"""What the three Triton kernels (fused linear, flash, map) share: dot precision and score ids."""

from __future__ import annotations

import torch

from csg2a_graph.errors import EnvironmentProblem

# score -> constexpr id used inside kernels
SCORE_ID = {"linear": 0, "softmax": 1, "sigmoid": 2}


def dot_precision(dtype) -> str:
    """Dot precision for fp32 inputs: with torch's TF32 switch off (its default) use 3xTF32,
    which keeps fp32 accuracy on tensor cores; with it on, plain TF32 like torch.matmul.
    """
    if dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32:
        return "tf32x3"
    return "tf32"


# ----------------------------------------------------------------------------- shared memory and stages
def shared_memory_limit(device) -> "int | None":
    """The device's shared memory per block in bytes (``max_shared_mem``; 232,448 on H100/H200), or ``None``
    off CUDA (the interpreter has no limit).
    """
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    try:
        import triton

        idx = device.index if device.index is not None else torch.cuda.current_device()
        return int(triton.runtime.driver.active.utils.get_device_properties(idx)["max_shared_mem"])
    except Exception:  # noqa: BLE001 - an older driver API: the launch ladder still protects
        return None


def operand_bytes(dtype, precision: str) -> int:
    """Bytes a dot operand element occupies in shared memory: bf16/fp16 2, fp32 4; 3xTF32 keeps a high and a low
    part of each fp32 operand (8).
    """
    if dtype in (torch.float16, torch.bfloat16):
        return 2
    return 8 if precision == "tf32x3" else 4


def loop_smem(block_rows: int, block_k: int, block_h: int, nbytes: int, stages: int) -> int:
    """Estimated shared memory of the fused kernels' reduction loop: per pipeline stage one ``[rows, k]`` tile of
    each of two inputs and ``[k, h]`` tiles of the two weights, plus the ``[rows, h]`` fp32 accumulators.
    """
    per_stage = (2 * block_rows * block_k + 2 * block_k * block_h) * nbytes
    return stages * per_stage + 2 * block_rows * block_h * 4


def choose_stages(
    block_rows: int, block_k: int, block_h: int, nbytes: int, limit: "int | None", max_stages: int = 3
) -> int:
    """The most software-pipelining stages (``max_stages`` .. 1) whose ``loop_smem()`` fits ``limit`` (1 when
    none does: one stage is the least a loop needs; the launch ladder then shrinks tiles or refuses clearly).
    """
    for s in range(max_stages, 0, -1):
        if limit is None or loop_smem(block_rows, block_k, block_h, nbytes, s) <= limit:
            return s
    return 1


def launch(kernel, grid, *args, stages: int, **kwargs):
    """``kernel[grid](*args, num_stages=stages, **kwargs)``; when the compiled kernel needs more shared memory
    than the device has (Triton's ``OutOfResources``, raised before anything runs), retry with fewer stages, and
    refuse in one line naming the sizes when even one stage does not fit.
    """
    try:
        from triton.runtime.errors import OutOfResources
    except ImportError:  # pragma: no cover - very old Triton
        OutOfResources = RuntimeError  # noqa: N806
    last = None
    for s in range(int(stages), 0, -1):
        try:
            return kernel[grid](*args, num_stages=s, **kwargs)
        except OutOfResources as e:
            last = e
    raise EnvironmentProblem(
        f"{getattr(kernel, '__name__', 'the Triton kernel')} needs more shared memory than this GPU "
        f"has even with one pipeline stage ({last}); tiles "
        f"{ {k: v for k, v in kwargs.items() if k.startswith('BLOCK')} }: use bf16 inputs or "
        "impl='expanded'"
    ) from last


__all__ = ["SCORE_ID", "dot_precision", "shared_memory_limit", "operand_bytes", "loop_smem", "choose_stages", "launch"]
