"""Atomic, link-safe writes and workdir-confined paths (stdlib only).

One helper for every output file of every entry point (fit.json/.md/.tex,
report.md, plots, plan.json, sweep.json, run.json, metrics rewrites, caches):

* ``atomic_write(path, data)`` writes to a temporary file in the same
  directory, flushes and fsyncs it, renames it over ``path`` and fsyncs the
  directory. A failed write (disk full, quota, read-only, ...) removes the
  temporary file and raises ``WriteError``, whose one line names the file and
  says that the previous version is unchanged (or that none was created):
  the old file is never truncated or half-written.
* ``atomic_output(path)`` is the same for writers that need a file name
  (matplotlib's ``savefig``): they write the temporary path it yields.
* The rename replaces ``path`` itself, never what it points to: a symbolic
  link planted where an output goes is replaced by a regular file (one
  warning line names it; its target is untouched). With ``root`` given, a
  directory that resolves outside ``root`` (a linked ``report/``) is refused
  before anything is opened.
* ``open_append(path)`` opens for appending with ``O_NOFOLLOW``: a ledger or
  metrics file that is a symbolic link is refused, not followed.

Paths read from files (run ids, trunk ids from a ledger, sweep.json or
run.json) go through ``check_name`` / ``confined`` before any file is opened:
a name that is not one plain path component (``../../x``, ``/etc``, ``a/b``)
or a path that resolves outside its root (a planted link) raises
``UnsafePathError``.

``read_json(path)`` reads a JSON file strictly: a truncated or corrupted file
raises ``CorruptFileError`` (one line, naming the file and what to do), and
a repeated key in one object is refused (``json`` would keep the last one
silently).

This module imports only the standard library, so ``lm``, ``experiments``
and ``scaling`` all use it.
"""
from __future__ import annotations

import contextlib
import errno as errno_lib
import json
import os
import tempfile
import warnings
from typing import Any, Iterator, Optional


class WriteError(OSError):
  """A write that failed and left the previous file as it was.

  ``errno``, ``strerror`` and ``filename`` are those of the failure; ``note``
  says what happened to the file (``lm.cli`` appends it to the error line).
  """

  def __init__(self, err: OSError, path: str, existed: bool):
    super().__init__(err.errno, err.strerror or str(err), path)
    self.note = (f"the previous {os.path.basename(path)} is unchanged"
                 if existed else f"no {os.path.basename(path)} was created")

  def __str__(self) -> str:
    return (f"could not write {self.filename}: {self.strerror}; "
            f"{self.note}")


class UnsafePathError(ValueError):
  """A path taken from a file would leave its directory; one line."""


class CorruptFileError(ValueError):
  """A JSON file that does not parse (truncated, edited); one line."""


def _umask() -> int:
  mask = os.umask(0o022)
  os.umask(mask)
  return mask


_MODE = 0o666 & ~_umask()


def _fsync_dir(directory: str) -> None:
  try:
    fd = os.open(directory, os.O_RDONLY)
  except OSError:
    return
  try:
    os.fsync(fd)
  except OSError:  # some filesystems refuse fsync on directories
    pass
  finally:
    os.close(fd)


def _inside(path: str, root: str) -> bool:
  real, rroot = os.path.realpath(path), os.path.realpath(root)
  return real == rroot or real.startswith(rroot.rstrip(os.sep) + os.sep)


def _prepare(path: str, root: Optional[str]) -> str:
  """The absolute path; refuses a directory outside ``root`` and a
  directory where a file goes. Creates the parent directory."""
  path = os.path.abspath(path)
  parent = os.path.dirname(path)
  if root is not None and not _inside(parent, root):
    raise UnsafePathError(
        f"{parent} resolves to {os.path.realpath(parent)}, outside "
        f"{os.path.abspath(root)} (a symbolic link?); refusing to write "
        f"{os.path.basename(path)} there: remove the link")
  os.makedirs(parent, exist_ok=True)
  if os.path.isdir(path) and not os.path.islink(path):
    raise IsADirectoryError(errno_lib.EISDIR, "is a directory, not a file",
                            path)
  return path


def _replaced_link(path: str) -> Optional[str]:
  return os.readlink(path) if os.path.islink(path) else None


def _commit(tmp: str, path: str, link: Optional[str]) -> None:
  os.replace(tmp, path)  # replaces a link itself, never its target
  _fsync_dir(os.path.dirname(path))
  if link is not None:
    warnings.warn(f"{path} was a symbolic link (to {link}); replaced it with "
                  "a regular file, the link's target is untouched")


def atomic_write(path: str, data, *, root: Optional[str] = None) -> None:
  """Writes ``data`` (str: UTF-8, or bytes) to ``path`` atomically.

  Raises ``WriteError`` (previous file unchanged) on any OSError while
  writing, ``UnsafePathError`` for a directory outside ``root``.
  """
  if isinstance(data, str):
    data = data.encode("utf-8")
  with atomic_output(path, root=root) as tmp:
    with open(tmp, "wb") as f:
      f.write(data)


def atomic_write_json(path: str, obj: Any, *, root: Optional[str] = None,
                      **dump_kwargs) -> None:
  """``json.dumps(obj, **dump_kwargs)`` written with ``atomic_write``
  (serialised first: an unserialisable object never touches the disk)."""
  dump_kwargs.setdefault("indent", 2)
  atomic_write(path, json.dumps(obj, **dump_kwargs) + "\n", root=root)


@contextlib.contextmanager
def atomic_output(path: str, *, root: Optional[str] = None) -> Iterator[str]:
  """Yields a temporary path beside ``path`` (same extension) to write;
  on success it is fsynced and renamed over ``path``, on failure removed
  (``path`` unchanged; an OSError becomes ``WriteError``)."""
  path = _prepare(path, root)
  existed = os.path.lexists(path)
  link = _replaced_link(path)
  base = os.path.basename(path)
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=f".{base}.",
                             suffix=".tmp" + os.path.splitext(base)[1])
  os.close(fd)
  try:
    yield tmp
    os.chmod(tmp, _MODE)
    fd = os.open(tmp, os.O_RDONLY)
    try:
      os.fsync(fd)
    finally:
      os.close(fd)
    _commit(tmp, path, link)
  except BaseException as e:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    if isinstance(e, OSError) and not isinstance(e, WriteError) and \
        e.errno is not None:
      raise WriteError(e, path, existed) from e
    raise


def save_figure(fig, path: str, *, root: Optional[str] = None,
                **savefig_kwargs) -> str:
  """``fig.savefig`` (matplotlib) through ``atomic_output``; returns path."""
  fmt = os.path.splitext(path)[1].lstrip(".") or None
  with atomic_output(path, root=root) as tmp:
    fig.savefig(tmp, format=fmt, **savefig_kwargs)
  return path


def open_append(path: str, mode: int = 0o644) -> int:
  """An ``O_APPEND`` descriptor for ``path`` that never follows a symbolic
  link (refused with one line)."""
  flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
  try:
    return os.open(path, flags, mode)
  except OSError as e:
    if e.errno == errno_lib.ELOOP or os.path.islink(path):
      raise UnsafePathError(
          f"{path} is a symbolic link (to {os.readlink(path)}); refusing to "
          "append through it: replace it with the real file") from None
    raise


def check_name(name: Any, what: str, source: str = "") -> str:
  """``name`` if it is one plain path component, else UnsafePathError."""
  ok = (isinstance(name, str) and name not in ("", ".", "..")
        and "/" not in name and "\\" not in name and "\x00" not in name
        and name == name.strip())
  if not ok:
    where = f"{source}: " if source else ""
    raise UnsafePathError(
        f"{where}{what} {name!r} is not a plain name (it could point outside "
        "the working directory); refusing to open anything by it: the field "
        "was crafted or corrupted, fix that line")
  return name


def confined(root: str, *names: str, what: str = "path",
             source: str = "") -> str:
  """``root/names...`` after checking each name (``check_name``) and that
  the result does not resolve outside ``root`` (a planted link)."""
  for n in names:
    check_name(n, what, source)
  path = os.path.join(root, *names)
  if os.path.lexists(path) and not _inside(path, root):
    where = f"{source}: " if source else ""
    raise UnsafePathError(
        f"{where}{path} resolves to {os.path.realpath(path)}, outside "
        f"{os.path.abspath(root)} (a symbolic link); refusing to read or "
        "write through it: remove the link")
  return path


def no_duplicate_keys(source: str):
  """A ``json.loads`` ``object_pairs_hook`` refusing a repeated key."""
  def hook(pairs):
    seen = {}
    for k, v in pairs:
      if k in seen:
        raise CorruptFileError(
            f"{source}: key {k!r} appears twice in one JSON object (which "
            "value is meant cannot be told); keep one and remove the other")
      seen[k] = v
    return seen
  return hook


def loads_strict(text, source: str) -> Any:
  """``json.loads`` refusing a repeated key; CorruptFileError on bad JSON."""
  try:
    return json.loads(text, object_pairs_hook=no_duplicate_keys(source))
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise CorruptFileError(f"{source}: not valid JSON ({e})") from None


def read_json(path: str, *, hint: str = "") -> Optional[Any]:
  """The decoded JSON file, None when it does not exist; a truncated or
  corrupted file raises CorruptFileError naming it (and ``hint``)."""
  try:
    with open(path, "rb") as f:
      data = f.read()
  except FileNotFoundError:
    return None
  try:
    return loads_strict(data.decode("utf-8"), path)
  except (CorruptFileError, UnicodeDecodeError) as e:
    why = str(e).split(": ", 1)[-1] if isinstance(e, CorruptFileError) \
        else "not UTF-8"
    if not data.strip():
      why = "empty file"
    raise CorruptFileError(
        f"{path} is damaged ({why}; truncated by a crash or a full disk, or "
        f"edited){'; ' + hint if hint else ''}") from None
