"""On-disk cache of compile verdicts, and compiles side by side.

A verdict (one program's memory analysis, FLOPs and compile time, or the
compiler's out-of-memory error) is keyed by everything that changes the
compiled program: the fields of the StepSpec that program depends on (train:
model incl. remat, batch, grad_accum, steps_per_call, mesh, rules, optimizer
constants; eval: model, eval batches, mesh, rules), the target's topology,
the jax / jaxlib / libtpu versions and the source of the modules that build
the program. Runs and candidate settings that share an eval program share
its compile. A
file lock per key makes concurrent processes (two planners, the workers of
one) compile each key once: the second waits and reads the first's verdict.

Directory: ``$SCALINGLM_COMPILE_CACHE``, else ``$SCALINGLM_CACHE/compile``,
else ``~/.cache/scalinglm/compile``. Files are written atomically.
"""
from __future__ import annotations

import fcntl
import functools
import hashlib
import importlib.metadata
import json
import multiprocessing
import os
import time
from typing import Any, Dict, List, Optional, Sequence

import jax
from tqdm import tqdm

from lm import safe_io
from lm.accel import aot
from lm.accel.spec import StepSpec
from lm.accel.targets import Target
from lm.config import ConfigError

# Modules whose source shapes the compiled program.
_PROGRAM_MODULES = ("lm/model.py", "lm/step.py", "lm/sharding.py",
                    "lm/optim.py", "lm/schedules.py", "lm/accel/aot.py")
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def cache_dir() -> str:
  explicit = os.environ.get("SCALINGLM_COMPILE_CACHE")
  if explicit:
    return explicit
  base = os.environ.get("SCALINGLM_CACHE") or os.path.expanduser(
      "~/.cache/scalinglm")
  return os.path.join(base, "compile")


def _version(dist: str) -> Optional[str]:
  try:
    return importlib.metadata.version(dist)
  except importlib.metadata.PackageNotFoundError:
    return None


@functools.lru_cache(maxsize=1)
def toolchain() -> Dict[str, Any]:
  """Versions and source digest that change what the compiler produces."""
  h = hashlib.sha256()
  for rel in _PROGRAM_MODULES:
    with open(os.path.join(_ROOT, rel), "rb") as f:
      h.update(rel.encode() + b"\0" + f.read())
  return {"jax": _version("jax"), "jaxlib": _version("jaxlib"),
          "libtpu": _version("libtpu") or _version("libtpu-nightly"),
          "program_sha256": h.hexdigest()}


PROGRAMS = ("train", "eval")


def quiet_libtpu() -> None:
  """Compile-only libtpu: no metadata-server query and no worker-hostname
  warnings (there is no TPU VM; the topology is given explicitly), and
  several processes may load it (the lock file is for real chips)."""
  for k, v in (("ALLOW_MULTIPLE_LIBTPU_LOAD", "1"), ("TPU_SKIP_MDS_QUERY", "1"),
               ("TPU_WORKER_HOSTNAMES", "localhost")):
    os.environ.setdefault(k, v)


def key_material(spec: StepSpec, target: Target, program: str
                 ) -> Dict[str, Any]:
  return {"program": program, "spec": spec.program_dict(program),
          "topology": target.topology, "chip_config": target.chip_config,
          "chips_per_host": list(target.chips_per_host),
          "toolchain": toolchain()}


def cache_key(spec: StepSpec, target: Target, program: str) -> str:
  blob = json.dumps(key_material(spec, target, program), sort_keys=True)
  return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _path(key: str) -> str:
  return os.path.join(cache_dir(), key + ".json")


def _read_key(key: str) -> Optional[Dict[str, Any]]:
  try:
    with open(_path(key)) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def write_json_atomic(path: str, obj: Any) -> None:
  """JSON to ``path`` through lm.safe_io (temp file, fsync, rename; a link
  there is replaced, never written through)."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  safe_io.atomic_write_json(path, obj, indent=1, sort_keys=True, default=str)


def _is_oom(err: str) -> bool:
  e = err.lower()
  return ("resource_exhausted" in e or "out of memory" in e
          or "ran out of memory" in e or ("exceeds" in e and "memory" in e))


def program_verdict(spec: StepSpec, target: Target, program: str, *,
                    wait: bool = True) -> Optional[Dict[str, Any]]:
  """One program's verdict from the cache, else compiled under its key's
  lock: {'memory', 'xla_flops', 'compile_s'} or {'error', 'oom'}, plus
  'cached'. ``wait=False``: None at once when another process holds the
  key (it is compiling it)."""
  key = cache_key(spec, target, program)
  os.makedirs(cache_dir(), exist_ok=True)
  fd = os.open(os.path.join(cache_dir(), key + ".lock"),
               os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
  with os.fdopen(fd, "r+") as lock:
    try:
      fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
      return None
    got = _read_key(key)
    if got is not None:
      return {**got, "cached": True}
    quiet_libtpu()
    try:
      out: Dict[str, Any] = aot.compile_program(spec, target, program)
    except Exception as e:  # pylint: disable=broad-except  # a verdict too
      msg = " ".join(str(e).split())[:600]
      if not _is_oom(msg):
        raise
      out = {"error": f"{type(e).__name__}: {msg}", "oom": True}
    out["key"] = key_material(spec, target, program)
    write_json_atomic(_path(key), out)
    return {**out, "cached": False}


def combine(train: Dict[str, Any], ev: Dict[str, Any]) -> Dict[str, Any]:
  """{'result': CompileResult dict, 'cached'} or {'error', 'oom'}."""
  for v in (train, ev):
    if "error" in v:
      return {"error": v["error"], "oom": v.get("oom", False)}
  return {"result": aot.result_of(train, ev).to_dict(),
          "cached": bool(train.get("cached") and ev.get("cached"))}


def verdict(spec: StepSpec, target: Target) -> Dict[str, Any]:
  """Both programs' verdicts of ``spec`` on ``target`` (``combine``)."""
  return combine(*(program_verdict(spec, target, p) for p in PROGRAMS))


def read(spec: StepSpec, target: Target) -> Optional[Dict[str, Any]]:
  """The combined verdict if both programs are cached, else None."""
  got = [_read_key(cache_key(spec, target, p)) for p in PROGRAMS]
  if any(g is None for g in got):
    return None
  return combine(*({**g, "cached": True} for g in got))


def _worker(jobs: Sequence[tuple], parent: int) -> None:
  """A compile process: every program not cached and not taken by another;
  it stops when its planner is gone (killed planners leave no compiles)."""
  if not os.environ.get("JAX_PLATFORMS"):  # compile only: leave the chips be
    jax.config.update("jax_platforms", "cpu")
  for spec, target, program in jobs:
    if os.getppid() != parent:
      return
    program_verdict(spec, target, program, wait=False)


def verdicts(jobs: Sequence[tuple], *, workers: int = 1,
             progress: bool = True, desc: str = "compile") -> List[Dict]:
  """``verdict`` of each (spec, target) in ``jobs``, in order. Distinct
  programs compile once, side by side in ``workers`` processes (1: in this
  one); each worker walks the list taking the programs no other process
  holds, so separate planners on one cache share the work too."""
  first: Dict[str, tuple] = {}
  for spec, target in jobs:
    for p in PROGRAMS:
      first.setdefault(cache_key(spec, target, p), (spec, target, p))
  todo = [k for k in first if _read_key(k) is None]
  bar = None
  if progress and todo:
    bar = tqdm(total=len(todo), desc=f"{desc} ({len(first) - len(todo)} "
               "programs cached)", unit="program", leave=True)
  procs = []
  if workers > 1 and len(todo) > 1:
    ctx = multiprocessing.get_context("spawn")
    for w in range(min(workers, len(todo))):
      order = [first[k] for k in todo[w:] + todo[:w]]  # own starting point
      proc = ctx.Process(target=_worker, args=(order, os.getpid()),
                         daemon=True)
      proc.start()
      procs.append(proc)
  pending = list(todo)
  try:
    while pending:
      done = [k for k in pending if os.path.exists(_path(k))]
      if not procs or (not done and not any(p.is_alive() for p in procs)):
        # In this process (also when a worker died: its error surfaces here).
        program_verdict(*first[pending[0]])
        done = [pending[0]]
      for k in done:
        pending.remove(k)
        if bar:
          bar.update()
      if pending and procs and not done:
        time.sleep(1.0)
  finally:
    for proc in procs:  # finished: they only read the cache now
      proc.join(timeout=30 if not pending else 0)
      if proc.is_alive():
        proc.terminate()
        proc.join()
    if bar:
      bar.close()
  return [verdict(spec, target) for spec, target in jobs]
