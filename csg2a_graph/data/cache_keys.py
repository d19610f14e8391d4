"""What identifies a processed dataset: file digests (full, or sampled for huge files), atomic writes, and a
tag of what a ``pre_filter`` / ``pre_transform`` computes (its code, the globals it reads, closures...).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import os
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

logger = logging.getLogger(__name__)


FULL_HASH_BYTES = 64 << 20  # files up to this size are hashed in full on every check
SAMPLED_HASH_BYTES = 1 << 30  # beyond this, size + mtime + evenly spaced blocks (see file_digest)
_DIGEST_MEMO: Dict[tuple, str] = {}


def file_digest(path: str) -> str:
    """A content hash of one raw file (BLAKE2b, 128 bit).

    - up to 64 MiB (every staged file): the whole content, re-read on every check, so
      any edit is noticed, also one that keeps the size and the modification time;
    - 64 MiB – 1 GiB: the whole content, remembered for this process per
      ``(path, size, mtime_ns, ctime_ns, inode)`` (an edit changes the times);
    - beyond 1 GiB (a full LINCS GCTX is ~50 GB): size, ``mtime_ns`` and 64 blocks of
      64 KiB spread evenly over the file, first and last included.
    """
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    if st.st_size > FULL_HASH_BYTES and key in _DIGEST_MEMO:
        return _DIGEST_MEMO[key]
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        if st.st_size <= SAMPLED_HASH_BYTES:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        else:
            h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
            block, n = 1 << 16, 64
            for i in range(n):
                f.seek((st.st_size - block) * i // (n - 1))
                h.update(f.read(block))
    digest = h.hexdigest()
    if st.st_size > FULL_HASH_BYTES:
        _DIGEST_MEMO[key] = digest
    return digest


def file_fingerprint(paths: Sequence[str]) -> str:
    """Short hash of raw files' names and contents (see ``file_digest()``): any edit to a
    raw file gives a new fingerprint, hence a new processed file.
    """
    h = hashlib.sha1()
    for p in sorted(paths):
        h.update(f"{os.path.basename(p)}:{file_digest(p)}".encode())
    return h.hexdigest()[:10]


def write_atomic(obj, path: str) -> None:
    """``torch.save`` to a temporary name unique to this process and thread, then an atomic
    rename: concurrent builds into one root never read or clobber a half-written file.
    """
    import threading
    import uuid

    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def callable_tag(fn) -> Optional[str]:
    """A name for a ``transform`` / ``pre_filter`` that is the same in every process and changes when what the
    function computes changes: its ``repr`` when that is stable (PyG transforms: ``NormalizeFeatures()``),
    else module, qualified name and a hash of its behaviour (``behaviour_digest()``: source, defaults,
    ``functools.partial`` arguments, closure values, the module globals it reads, an instance's attributes).
    ``None`` for ``None``.
    """
    if fn is None:
        return None
    r = repr(fn)
    if " at 0x" not in r:
        return r
    base = fn.func if isinstance(fn, functools.partial) else fn
    target = base if inspect.isfunction(base) or inspect.ismethod(base) else type(base)
    name = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', type(base).__name__)}"
    return f"{name}:{behaviour_digest(fn)}"


def behaviour_digest(fn, _depth: int = 0, _seen: Optional[set] = None) -> str:
    """A hash of what a callable computes, as far as it can be read: its source (or bytecode), default
    arguments, ``functools.partial`` arguments, closure cells, the values of module globals its code names
    (other functions recursively), a bound method's object and a callable object's attributes. A value with
    no stable form (an arbitrary object whose ``repr`` holds its address) makes the digest differ in every
    process: the processed file is then rebuilt rather than reused stale.
    """
    h = hashlib.sha1()
    seen = set() if _seen is None else _seen
    h.update(_value_repr(fn, _depth, seen).encode())
    return h.hexdigest()[:10]


def _code_names(code) -> List[str]:
    names = list(code.co_names)
    for c in code.co_consts:
        if inspect.iscode(c):
            names += _code_names(c)
    return names


def _function_repr(fn, depth: int, seen: set) -> str:
    try:
        src = inspect.getsource(fn)
    except (OSError, TypeError):
        code = fn.__code__
        src = code.co_code.hex() + repr([c for c in code.co_consts if not inspect.iscode(c)])
    parts = [src, "defaults", _value_repr(fn.__defaults__, depth, seen), _value_repr(fn.__kwdefaults__, depth, seen)]
    for cell in fn.__closure__ or ():
        try:
            parts.append(_value_repr(cell.cell_contents, depth, seen))
        except ValueError:  # an empty cell
            parts.append("<empty>")
    g = fn.__globals__
    for n in sorted(set(_code_names(fn.__code__))):
        if n in g:
            parts.append(f"{n}={_value_repr(g[n], depth, seen)}")
    return "\n".join(parts)


def _value_repr(v, depth: int, seen: set) -> str:
    """A stable text of ``v`` for ``behaviour_digest()`` (recursion bounded)."""
    import types

    import numpy as np

    if v is None or isinstance(v, (bool, int, float, complex, str, bytes)):
        return repr(v)
    if isinstance(v, types.ModuleType):
        return f"module:{v.__name__}"
    if depth > 4 or id(v) in seen:
        return f"<{type(v).__qualname__}>"
    seen = seen | {id(v)}
    d = depth + 1
    if isinstance(v, (list, tuple, set, frozenset)):
        items = (
            sorted(_value_repr(x, d, seen) for x in v)
            if isinstance(v, (set, frozenset))
            else [_value_repr(x, d, seen) for x in v]
        )
        return f"{type(v).__name__}({', '.join(items)})"
    if isinstance(v, dict):
        return (
            "{"
            + ", ".join(
                f"{_value_repr(k, d, seen)}: {_value_repr(x, d, seen)}"
                for k, x in sorted(v.items(), key=lambda kv: repr(kv[0]))
            )
            + "}"
        )
    if isinstance(v, Tensor):
        t = v.detach().cpu().contiguous()
        return f"tensor{tuple(t.shape)}{t.dtype}:{hashlib.sha1(t.numpy().tobytes()).hexdigest()}"
    if isinstance(v, np.ndarray):
        return f"ndarray{v.shape}{v.dtype}:{hashlib.sha1(np.ascontiguousarray(v).tobytes()).hexdigest()}"
    if isinstance(v, functools.partial):
        return (
            f"partial({_value_repr(v.func, d, seen)}, {_value_repr(v.args, d, seen)}, "
            f"{_value_repr(v.keywords, d, seen)})"
        )
    if inspect.ismethod(v):
        return f"method({_value_repr(v.__func__, d, seen)}, {_value_repr(v.__self__, d, seen)})"
    if inspect.isfunction(v):
        if (
            getattr(v, "__module__", "")
            and not str(v.__module__).startswith("__main__")
            and str(v.__module__).split(".")[0] in ("torch", "numpy", "torch_geometric", "pandas", "scipy")
        ):
            return f"function:{v.__module__}.{v.__qualname__}"  # a library's function: its name says it
        return f"function:{v.__module__}.{v.__qualname__}:{_function_repr(v, d, seen)}"
    if inspect.isbuiltin(v) or isinstance(v, type):
        name = f"{getattr(v, '__module__', '?')}.{getattr(v, '__qualname__', repr(v))}"
        if isinstance(v, type) and name.split(".")[0] not in ("builtins", "torch", "numpy", "torch_geometric"):
            try:
                return f"type:{name}:{hashlib.sha1(inspect.getsource(v).encode()).hexdigest()}"
            except (OSError, TypeError):
                pass
        return f"{'type' if isinstance(v, type) else 'builtin'}:{name}"
    r = repr(v)
    if " at 0x" not in r and " object at " not in r:
        return f"{type(v).__qualname__}:{r}"
    state = getattr(v, "__dict__", None)
    if isinstance(state, dict):  # a callable object / config object: its class and attributes
        return f"{_value_repr(type(v), d, seen)}{_value_repr(state, d, seen)}"
    return r  # no stable form: differs per process (rebuilt, never stale)


def options_tag(options: Dict) -> str:
    return hashlib.sha1(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()[:10]
