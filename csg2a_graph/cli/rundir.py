"""What ``--out`` may hold, and who may write into it.

A training command (``pretrain``, ``finetune``, ``cv``, ``quickstart``) owns its output folder:

- an empty or new folder starts a run; ``run.json`` records the command, its options and, once the
  data are loaded, what the run resolved (data fingerprint, prior, drug encoder, pretrained network);
- a folder holding a run of the same command with the **same options and data** continues it
  (finished epochs, folds and models are kept; a finished run just reports again);
- a run with **other** options or data is refused in one line naming the differences, before
  anything is written: use another ``--out``, or ``--overwrite`` to replace it;
- ``--resume`` insists on continuing (refused when there is nothing to continue);
- ``--overwrite`` removes only what runs write (``RUN_FILES``); your own files in the folder (notes, an
  analysis, another run nested inside) are kept and listed;
- a non-empty folder that is not a csg2a-graph run is never written into, and no run starts inside another
  run's folder;
- ``predict`` / ``explain`` / ``analyze`` never write over a run's own files or their inputs
  (``check_output_file()``, ``check_output_folder()``);
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
#: what the training commands write into their --out (files and folders); --overwrite removes only these
RUN_FILES = frozenset(
    {
        MARKER,
        MARKER + ".tmp",
        LOCK,
        "config.toml",
        "model.pt",
        "checkpoint.pt",
        "metrics.csv",
        "train.log",
        "tb",
        "test_metrics.json",
        "results.csv",
        "summary.md",
        "predictions",
        "predictions.csv",
        "splits",
        "runs",
        "pretrain",
        "checkpoints",
        "scatter.png",
        "cv",
        "cross_study.csv",
        "untrained",
        "randomized",
    }
)
RUN_CONTROL = {
    "resume",
    "overwrite",
    "device",
    "max_minutes",
    "out",
    "root",
    "verbose",
    "quiet",
    "config",
    "fetch",
    "no_download",
    "jobs",
    "executor",
    "ray_address",
    "gpus_per_run",
    "threads",
}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _proc_start(pid: int) -> Optional[str]:
    """The start time of process ``pid`` (clock ticks since boot, ``/proc/PID/stat`` field 22), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _holder_alive(held: Dict[str, Any]) -> bool:
    """Whether the process that took a lock still runs: its pid is alive *and* is the same process (a pid
    reused by an unrelated program — a reboot, a long-dead run — does not hold the folder).
    """
    pid = held.get("pid")
    if not isinstance(pid, int) or not _pid_alive(pid):
        return False
    start = _proc_start(pid)
    if held.get("pid_start") and start is not None:
        return start == held["pid_start"]
    try:  # a lock without a start time: the pid must at least run Python (csg2a, torchrun, pytest)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return True  # cannot tell: assume it is the holder
    return any(w in cmd for w in ("csg2a", "python", "torchrun", "pytest"))


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
        if k not in old and _off(b):
            continue  # an option added in a later version, left at its off default: the run computes the same
        if isinstance(a, dict) and isinstance(b, dict):
            out += [f"{k}.{d}" for d in _differences(a, b)]
        elif a != b:
            out.append(f"{k}: {a!r} -> {b!r}")
    return out


def _off(v: Any) -> bool:
    return v is None or v is False or (isinstance(v, (list, dict, str)) and not v)


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
    checks the folder and takes the lock; ``resolve()`` checks what the run resolved; ``start()``
    writes ``run.json`` (the caller writes ``config.toml``); ``finish()`` marks the run finished.
    """

    def __init__(
        self,
        out: str,
        command: str,
        options: Dict[str, Any],
        *,
        resume: bool = False,
        overwrite: bool = False,
        quiet: bool = False,
        growable: Sequence[str] = (),
    ):
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
        self._new = False  # this process started a new run (start() on a folder that held none)
        self._made_folder = False

    # ------------------------------------------------------------------ checks (no writes)
    def _entries(self) -> List[str]:
        if not os.path.isdir(self.out):
            if os.path.exists(self.out):
                raise CLIError(f"--out {self.out} is a file, not a folder")
            return []
        return sorted(e for e in os.listdir(self.out) if e != LOCK)

    def check(self) -> None:
        """Decide new / continue / refuse from what the folder holds; writes nothing."""
        outer = enclosing_run(self.out)
        if outer is not None:
            raise CLIError(
                f"--out {self.out} is inside the csg2a-graph run folder {outer}: a run there could be "
                "removed or mixed with that run's files; choose a folder outside it"
            )
        entries = self._entries()
        marker = os.path.join(self.out, MARKER)
        if not entries:
            if self.resume_flag:
                raise CLIError(f"--resume: {self.out} holds no run to continue")
            return
        if MARKER not in entries:
            shown = ", ".join(entries[:5]) + (" ..." if len(entries) > 5 else "")
            raise CLIError(
                f"--out {self.out} is not empty and holds no csg2a-graph run ({MARKER} missing; found "
                f"{shown}): choose an empty or new folder"
            )
        try:
            with open(marker) as f:
                prev = json.load(f)
        except (OSError, ValueError) as e:
            raise CLIError(f"{marker} is unreadable ({e}): choose another --out") from e
        if prev.get("command") != self.command:
            raise CLIError(
                f"--out {self.out} holds a 'csg2a {prev.get('command')}' run, not {self.command}: choose another folder"
            )
        self.previous = prev
        if self.overwrite:
            return
        diff = _differences(prev.get("options", {}), self.options, RUN_CONTROL | self.growable)
        if diff:
            raise CLIError(
                f"--out {self.out} holds a run with other options ({'; '.join(diff)}): nothing was "
                "changed; use another --out, the same options to continue, or --overwrite to replace it"
            )
        self.continuing = True

    # ------------------------------------------------------------------ lock
    def _lock(self) -> None:
        self._made_folder = not os.path.isdir(self.out)
        os.makedirs(self.out, exist_ok=True)
        path = os.path.join(self.out, LOCK)
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": self.command,
            "pid_start": _proc_start(os.getpid()),
        }
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
                if host == me["host"] and isinstance(pid, int) and not _holder_alive(held):
                    why = (
                        "no longer runs (killed?)"
                        if not _pid_alive(pid)
                        else "is now another program (the pid was reused)"
                    )
                    msg = (
                        f"{path}: removing a stale lock of pid {pid} ({held.get('command')}, started "
                        f"{held.get('started')}), which {why}"
                    )
                    # said even under -q: a run took over a folder another process was using
                    print(f"csg2a: warning: {msg}", file=sys.stderr, flush=True)
                    os.remove(path)
                    continue
                if host != me["host"]:
                    raise CLIError(
                        f"--out {self.out} is locked by pid {pid} on host {host} since "
                        f"{held.get('started')}; if no run is going there, delete {path}"
                    ) from None
                raise CLIError(
                    f"--out {self.out} is in use by pid {pid} ({held.get('command')}, started "
                    f"{held.get('started')}): wait for it, or choose another --out"
                ) from None
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
                kept = []
                for e in self._entries():
                    if not is_run_file(e):
                        kept.append(e)
                        continue
                    p = os.path.join(self.out, e)
                    shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.remove(p)
                self._say(
                    f"--overwrite: the earlier run in {self.out} was removed"
                    + (
                        f"; kept {len(kept)} entries that runs do not write: {', '.join(kept[:6])}"
                        + (" ..." if len(kept) > 6 else "")
                        if kept
                        else ""
                    )
                )
                self.previous = None
            elif self.continuing:
                state = self.previous.get("state")
                self._say(
                    f"{self.out} holds a {state} run with the same options: continuing it (--overwrite to start again)"
                )
        except BaseException:
            self._unlock()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and not issubclass(exc_type, KeyboardInterrupt):
            if self._new:
                self._forget_if_empty()
            elif self._made_folder and not self._entries():  # refused before start(): no empty folder left
                self._unlock()
                try:
                    os.rmdir(self.out)
                except OSError:
                    pass
        self._unlock()

    def _forget_if_empty(self) -> None:
        """A new run that failed before computing anything (a value refused after ``run.json`` was written)
        leaves the folder as it found it, so the corrected command starts afresh instead of being refused.
        ``run.json``, ``config.toml``, the deterministic ``splits/`` and empty folders are not results.
        """
        cheap = {MARKER, "config.toml", "splits"}
        entries = [e for e in self._entries() if is_run_file(e)]  # the user's own files: neither evidence nor removed
        for e in entries:
            p = os.path.join(self.out, e)
            if e in cheap:
                continue
            if os.path.isdir(p) and not os.path.islink(p) and _only_folders(p):
                continue  # empty folders the run made (predictions/, runs/rf_mixed_fold0/)
            return  # something was computed (a checkpoint, metrics, a result row): kept, the run can be continued
        for e in entries:
            p = os.path.join(self.out, e)
            shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.remove(p)
        self._unlock()
        if self._made_folder:
            try:
                os.rmdir(self.out)
            except OSError:
                pass

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
                raise CLIError(
                    f"--out {self.out} holds a run made with other data or resources ({'; '.join(diff)}): "
                    "nothing was changed; use another --out or --overwrite"
                )

    def start(self) -> None:
        """Write ``run.json`` (state ``running``); call after every check passed, before training."""
        self._new = not self.continuing
        self._write("running")

    def finish(self) -> None:
        self._write("finished")

    def _write(self, state: str) -> None:
        from csg2a_graph import __version__

        created = (self.previous or {}).get("created") or time.strftime("%Y-%m-%d %H:%M:%S")
        d = {
            "command": self.command,
            "state": state,
            "version": __version__,
            "created": created,
            "updated": time.strftime("%Y-%m-%d %H:%M:%S"),
            "options": self.options,
            "resolved": _merge((self.previous or {}).get("resolved", {}), self.resolved, self.growable),
        }
        path = os.path.join(self.out, MARKER)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(d, f, indent=1)
        os.replace(tmp, path)


def _only_folders(path: str) -> bool:
    """Whether a folder holds nothing but (nested) empty folders."""
    for _, _, files in os.walk(path):
        if files:
            return False
    return True


def is_run_file(name: str) -> bool:
    """Whether a folder entry is one a training command writes (``model.pt``, ``model.pt.tmp``...)."""
    return name in RUN_FILES or any(name.startswith(f + ".") for f in RUN_FILES if "." in f)


def enclosing_run(path: str) -> Optional[str]:
    """The nearest folder strictly above ``path`` that holds a csg2a-graph run (``run.json``), or None."""
    cur = os.path.dirname(os.path.abspath(path))
    while True:
        if os.path.isfile(os.path.join(cur, MARKER)):
            return cur
        up = os.path.dirname(cur)
        if up == cur:
            return None
        cur = up


def _same(a: str, b: str) -> bool:
    if os.path.abspath(a) == os.path.abspath(b):
        return True
    try:
        return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
    except OSError:
        return False


def check_output_file(option: str, out: str, inputs: Dict[str, Optional[str]]) -> None:
    """Refuse an output file that is one of the command's inputs (``{"--model": path}``), a folder, or a file a
    training run wrote (anything that exists in a run folder or below one): nothing of the user's is replaced.
    """
    for opt, inp in inputs.items():
        if inp and _same(out, inp):
            raise CLIError(f"{option} {out} is the {opt} file: it would be overwritten; choose another {option}")
    if os.path.isdir(out):
        raise CLIError(f"{option} {out} is a folder: give a file name (e.g. {os.path.join(out, 'predictions.csv')})")
    run = enclosing_run(out)
    if run is not None and os.path.lexists(out):
        raise CLIError(
            f"{option} {out} is a file of the csg2a-graph run in {run}: it would be overwritten; choose a new file name"
        )


def check_output_folder(option: str, out: str, writes: Sequence[str] = ()) -> None:
    """Refuse an output folder that is a training run's folder (its ``config.toml`` and results would be
    overwritten), or one inside a run whose ``writes`` files already exist there.
    """
    if os.path.isfile(out):
        raise CLIError(f"{option} {out} is a file, not a folder")
    if os.path.isfile(os.path.join(out, MARKER)):
        raise CLIError(
            f"{option} {out} is a csg2a-graph run folder: its files would be overwritten; choose a new "
            f"folder (e.g. {os.path.join(out, 'explain')})"
        )
    run = enclosing_run(os.path.join(out, "x"))
    if run is not None and os.path.abspath(run) != os.path.abspath(out):
        clash = [w for w in writes if is_run_file(w) and os.path.lexists(os.path.join(out, w))]
        if clash:
            raise CLIError(f"{option} {out} holds files of the run in {run} ({', '.join(clash)}): choose a new folder")


def add_run_args(p) -> None:
    """``--resume`` / ``--overwrite`` (the folder rules of ``csg2a_graph.cli.rundir``)."""
    g = p.add_argument_group("output folder (docs/cli.md: what --out may hold)")
    g.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in OUT (refused when OUT holds none or one with other options); a run "
        "with the same options is continued without it too",
    )
    g.add_argument("--overwrite", action="store_true", help="replace the csg2a-graph run in OUT")


__all__ = [
    "RunDir",
    "run_options",
    "add_run_args",
    "RUN_CONTROL",
    "RUN_FILES",
    "MARKER",
    "LOCK",
    "is_run_file",
    "enclosing_run",
    "check_output_file",
    "check_output_folder",
]
