"""What ``--out`` may hold, and who may write into it.

A training command (``pretrain``, ``finetune``, ``cv``, ``quickstart``) owns its output folder:

- an empty or new folder starts a run; ``run.json`` records the command, its options and, once the
  data are loaded, what the run resolved (data fingerprint, prior, drug encoder, pretrained network);
- a folder holding a run of the same command with the **same options and data** continues it
  (finished epochs, folds and models are kept; a finished run just reports again);
- a run with **other** options or data is refused in one line naming the differences, before
  anything is written: use another ``--out``, or ``--overwrite`` to replace it;
- ``--resume`` insists on continuing (refused when there is nothing to continue);
- a non-empty folder that is not a csg2a-graph run is never written into;
- ``.lock`` (pid, host, start time) keeps a second process out while a run is going; a lock left by
  a process that no longer runs (killed) is reported and taken over, one held by a live process,
  or by another host, is refused.

No torch import here: these checks run before the heavy imports.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

from csg2a_graph.cli.common import CLIError, run_options, say

logger = logging.getLogger(__name__)

MARKER = "run.json"
LOCK = ".lock"
#: options that may change between the runs of one folder: they do not change what is computed
RUN_CONTROL = {"resume", "overwrite", "device", "max_minutes", "out", "root", "verbose", "quiet", "config",
               "fetch", "no_download"}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _differences(old: Dict[str, Any], new: Dict[str, Any], ignore=()) -> List[str]:
    out = []
    for k in sorted(set(old) | set(new)):
        if k in ignore:
            continue
        a, b = old.get(k), new.get(k)
        if isinstance(a, tuple):
            a = list(a)
        if isinstance(b, tuple):
            b = list(b)
        if a != b:
            out.append(f"{k}: {a!r} -> {b!r}")
    return out


def _plain(v):
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


def _merge(old: Dict[str, Any], new: Dict[str, Any], growable) -> Dict[str, Any]:
    out = {**old, **new}
    for k in growable:
        if isinstance(old.get(k), dict) and isinstance(new.get(k), dict):
            out[k] = {**old[k], **new[k]}
    return out


class RunDir:
    """The output folder of one training command (see the module docstring).

    Use as a context manager: ``with RunDir(args.out, "finetune", options, resume=..., overwrite=...) as rd:``
    checks the folder and takes the lock; :meth:`resolve` checks what the run resolved; :meth:`start`
    writes ``run.json`` (the caller writes ``config.toml``); :meth:`finish` marks the run finished.
    """

    def __init__(self, out: str, command: str, options: Dict[str, Any], *, resume: bool = False,
                 overwrite: bool = False, quiet: bool = False, growable: Sequence[str] = ()):
        if resume and overwrite:
            raise CLIError("--resume and --overwrite exclude each other")
        self.out, self.command = out, command
        self.options = {k: _plain(v) for k, v in options.items() if k not in ("resume", "overwrite")}
        self.resume_flag, self.overwrite, self.quiet = resume, overwrite, quiet
        #: options that may grow between runs (cv: more models, schemes or folds on the same folds);
        #: for a dict fact of the same name only the entries both runs have are compared
        self.growable = set(growable)
        self.previous: Optional[Dict[str, Any]] = None
        self.resolved: Dict[str, Any] = {}
        self.continuing = False
        self._locked = False

    # ------------------------------------------------------------------ checks (no writes)
    def _entries(self) -> List[str]:
        if not os.path.isdir(self.out):
            if os.path.exists(self.out):
                raise CLIError(f"--out {self.out} is a file, not a folder")
            return []
        return sorted(e for e in os.listdir(self.out) if e != LOCK)

    def check(self) -> None:
        """Decide new / continue / refuse from what the folder holds; writes nothing."""
        entries = self._entries()
        marker = os.path.join(self.out, MARKER)
        if not entries:
            if self.resume_flag:
                raise CLIError(f"--resume: {self.out} holds no run to continue")
            return
        if MARKER not in entries:
            shown = ", ".join(entries[:5]) + (" ..." if len(entries) > 5 else "")
            raise CLIError(f"--out {self.out} is not empty and holds no csg2a-graph run ({MARKER} missing; found "
                           f"{shown}): choose an empty or new folder")
        try:
            with open(marker) as f:
                prev = json.load(f)
        except (OSError, ValueError) as e:
            raise CLIError(f"{marker} is unreadable ({e}): choose another --out") from e
        if prev.get("command") != self.command:
            raise CLIError(f"--out {self.out} holds a 'csg2a {prev.get('command')}' run, not {self.command}: "
                           "choose another folder")
        self.previous = prev
        if self.overwrite:
            return
        diff = _differences(prev.get("options", {}), self.options, RUN_CONTROL | self.growable)
        if diff:
            raise CLIError(f"--out {self.out} holds a run with other options ({'; '.join(diff)}): nothing was "
                           "changed; use another --out, the same options to continue, or --overwrite to replace it")
        self.continuing = True

    # ------------------------------------------------------------------ lock
    def _lock(self) -> None:
        os.makedirs(self.out, exist_ok=True)
        path = os.path.join(self.out, LOCK)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
              "command": self.command}
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    with open(path) as f:
                        held = json.load(f)
                except (OSError, ValueError):
                    held = {}
                pid, host = held.get("pid"), held.get("host")
                if host == me["host"] and isinstance(pid, int) and not _pid_alive(pid):
                    msg = (f"{path}: removing a stale lock of pid {pid} ({held.get('command')}, started "
                           f"{held.get('started')}), which no longer runs (killed?)")
                    # said even under -q: a run took over a folder another process was using
                    print(f"csg2a: warning: {msg}", file=sys.stderr, flush=True)
                    os.remove(path)
                    continue
                if host != me["host"]:
                    raise CLIError(f"--out {self.out} is locked by pid {pid} on host {host} since "
                                   f"{held.get('started')}; if no run is going there, delete {path}") from None
                raise CLIError(f"--out {self.out} is in use by pid {pid} ({held.get('command')}, started "
                               f"{held.get('started')}): wait for it, or choose another --out") from None
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self._locked = True
            return
        raise CLIError(f"could not take the lock {path}")

    def _unlock(self) -> None:
        if self._locked:
            try:
                os.remove(os.path.join(self.out, LOCK))
            except FileNotFoundError:
                pass
            self._locked = False

    def __enter__(self) -> "RunDir":
        self.check()
        self._lock()
        try:
            if self.overwrite and self.previous is not None:
                for e in self._entries():
                    p = os.path.join(self.out, e)
                    shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.remove(p)
                self._say(f"--overwrite: the earlier run in {self.out} was removed")
                self.previous = None
            elif self.continuing:
                state = self.previous.get("state")
                self._say(f"{self.out} holds a {state} run with the same options: continuing it "
                          "(--overwrite to start again)")
        except BaseException:
            self._unlock()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._unlock()

    def _say(self, msg: str) -> None:
        if not self.quiet:
            say(msg)

    @property
    def checkpoint(self) -> bool:
        """Whether a continued run has a ``checkpoint.pt`` to resume training from."""
        return self.continuing and os.path.exists(os.path.join(self.out, "checkpoint.pt"))

    # ------------------------------------------------------------------ after the data are loaded
    def resolve(self, **facts: Any) -> None:
        """Check what this run resolved (data fingerprint, prior, encoder...) against the earlier run's."""
        facts = {k: _plain(v) for k, v in facts.items()}
        self.resolved.update(facts)
        if self.previous is not None and not self.overwrite:
            old = self.previous.get("resolved", {})
            a, b = {}, {}
            for k, v in facts.items():
                if k not in old:
                    continue
                if k in self.growable and isinstance(v, dict) and isinstance(old[k], dict):
                    for kk in set(v) & set(old[k]):  # entries both runs have (e.g. the models of both)
                        a[f"{k}.{kk}"], b[f"{k}.{kk}"] = old[k][kk], v[kk]
                else:
                    a[k], b[k] = old[k], v
            diff = _differences(a, b)
            if diff:
                raise CLIError(f"--out {self.out} holds a run made with other data or resources ({'; '.join(diff)}): "
                               "nothing was changed; use another --out or --overwrite")

    def start(self) -> None:
        """Write ``run.json`` (state ``running``); call after every check passed, before training."""
        self._write("running")

    def finish(self) -> None:
        self._write("finished")

    def _write(self, state: str) -> None:
        from csg2a_graph import __version__

        created = (self.previous or {}).get("created") or time.strftime("%Y-%m-%d %H:%M:%S")
        d = {"command": self.command, "state": state, "version": __version__, "created": created,
             "updated": time.strftime("%Y-%m-%d %H:%M:%S"), "options": self.options,
             "resolved": _merge((self.previous or {}).get("resolved", {}), self.resolved, self.growable)}
        path = os.path.join(self.out, MARKER)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(d, f, indent=1)
        os.replace(tmp, path)


def add_run_args(p) -> None:
    """``--resume`` / ``--overwrite`` (the folder rules of :mod:`csg2a_graph.cli.rundir`)."""
    g = p.add_argument_group("output folder (docs/cli.md: what --out may hold)")
    g.add_argument("--resume", action="store_true",
                   help="continue the run in OUT (refused when OUT holds none or one with other options); a run "
                        "with the same options is continued without it too")
    g.add_argument("--overwrite", action="store_true", help="replace the csg2a-graph run in OUT")


__all__ = ["RunDir", "run_options", "add_run_args", "RUN_CONTROL", "MARKER", "LOCK"]
