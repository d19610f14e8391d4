"""The package's own error types: an error about the caller's input or environment is one of these, so the command
line can print it in one line while a programming error (a plain ``TypeError``, ``KeyError``, ``IndexError`` or
``RuntimeError``) surfaces with its traceback and a request to report it.

Each subclasses the built-in a caller would expect (``InputKeyError`` is a ``KeyError``...), so ``except KeyError``
in user code keeps working.
"""

from __future__ import annotations


class Csg2aError(Exception):
    """Base of the errors that describe the caller's input or environment, not a bug of the package."""


class InputError(Csg2aError, ValueError):
    """A value the caller gave is not usable."""


class InputTypeError(Csg2aError, TypeError):
    """An argument of the wrong type."""


class InputKeyError(Csg2aError, KeyError):
    """A name (gene, drug, key of a state dict...) the input lacks or does not know."""

    def __str__(self) -> str:  # KeyError quotes its message; ours reads as a sentence
        return str(self.args[0]) if self.args else ""


class InputIndexError(Csg2aError, IndexError):
    """A position outside the data."""


class EnvironmentProblem(Csg2aError, RuntimeError):
    """What this machine lacks or cannot do (no Triton, too little shared memory, a failed download)."""


__all__ = ["Csg2aError", "InputError", "InputTypeError", "InputKeyError", "InputIndexError", "EnvironmentProblem"]
