"""Text sources held in memory: the embedded stdlib corpus and local files.

A ``Corpus`` is an ordered list of documents (one file = one document) plus a
content hash. Document order is the *corpus order*: files sorted by
``sha256(key)`` (then ``key``), where ``key`` is the file's path relative to
its root. This order is deterministic and machine independent, and it is
pseudo-random. Which documents are held out for validation is decided from
the keys alone (``lm.data.split``).
``max_corpus_bytes`` takes whole files in corpus order until the next file
would exceed the cap.

Embedded default corpus: every ``*.py`` file under the running interpreter's
standard library (``sysconfig.get_paths()['stdlib']``), excluding
``site-packages``, ``dist-packages`` and ``__pycache__``; the stdlib's own test
suite IS included (it is most of the text: ~31 MB for CPython 3.11, ~1800
files). Files are decoded as UTF-8 with ``errors='replace'`` (4 stdlib test
files are deliberately not UTF-8).

Local files (``data.source='files'``): comma separated files or directories.
Named files are always read. Directories are walked recursively; hidden files
and directories (name starting with '.') and ``__pycache__`` are skipped, and
so is any file that looks binary (a NUL byte in its first 8 KiB). Everything
else is decoded as UTF-8 with ``errors='replace'``.

Content hash: sha256 over, for each file in corpus order,
``key + b'\\0' + len(content) as 8 little-endian bytes + content``.

Caching: the content hash of a file list is cached on disk, keyed by the list
of (key, size, mtime_ns), so a new process can find its tokenized arrays
without reading the files. Corpora are also memoised in-process.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
import sysconfig
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from lm import safe_io
from lm.config import ConfigError

_LOG = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = os.path.join("~", ".cache", "scalinglm")
CACHE_ENV_VAR = "SCALINGLM_CACHE"
_SKIP_DIRS = frozenset({"site-packages", "dist-packages", "__pycache__"})
_BINARY_SNIFF_BYTES = 8192


class DataError(ConfigError):
  """A user-facing data error; its message is one actionable line."""


def resolve_cache_dir(cache_dir: str = "") -> str:
  """``cache_dir`` if given, else ``$SCALINGLM_CACHE``, else ~/.cache/scalinglm."""
  path = cache_dir or os.environ.get(CACHE_ENV_VAR, "") or DEFAULT_CACHE_DIR
  return os.path.abspath(os.path.expanduser(path))


def atomic_write_bytes(path: str, data: bytes) -> bool:
  """Writes ``data`` to ``path`` atomically (``lm.safe_io``); False (and a
  warning) on OSError, the previous file unchanged."""
  try:
    safe_io.atomic_write(path, data)
    return True
  except OSError as e:
    _LOG.warning("could not write cache file %s: %s", path, e)
    return False


@dataclasses.dataclass
class Corpus:
  """An ordered document collection with a content hash.

  Attributes:
    name: "stdlib", "files" or a tfds description.
    sha256: content hash (see module docstring); the cache key of everything
      derived from the corpus (tokenizers, token arrays).
    metadata: JSON-friendly description for run.json.
    loader: returns the documents (called at most once, lazily).
    keys: each document's key (path relative to its root), in corpus order;
      known without reading the documents (the validation split uses them).
    sizes: each document's size in bytes on disk, in corpus order.
  """
  name: str
  sha256: str
  metadata: Dict[str, object]
  loader: Callable[[], List[str]]
  keys: Tuple[str, ...] = ()
  sizes: Tuple[int, ...] = ()
  _documents: Optional[List[str]] = dataclasses.field(default=None, repr=False)

  def documents(self) -> List[str]:
    if self._documents is None:
      self._documents = self.loader()
    return self._documents


# ----------------------------------------------------------------- file lists


def _order_key(key: str) -> Tuple[str, str]:
  return (hashlib.sha256(key.encode("utf-8")).hexdigest(), key)


def _looks_binary(path: str) -> bool:
  try:
    with open(path, "rb") as f:
      return b"\0" in f.read(_BINARY_SNIFF_BYTES)
  except OSError:
    return True


def _walk(root: str, accept: Callable[[str, str], bool]) -> List[Tuple[str, str]]:
  """(key, abspath) of accepted files under ``root``; key = path relative to root."""
  out = []
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames[:] = sorted(d for d in dirnames
                         if d not in _SKIP_DIRS and not d.startswith("."))
    for name in sorted(filenames):
      path = os.path.join(dirpath, name)
      if accept(name, path) and os.path.isfile(path):
        out.append((os.path.relpath(path, root).replace(os.sep, "/"), path))
  return out


def stdlib_files() -> List[Tuple[str, str]]:
  """(key, abspath) of the stdlib ``.py`` files, unordered-by-hash (walk order)."""
  root = sysconfig.get_paths()["stdlib"]
  return _walk(root, lambda name, _: name.endswith(".py"))


def local_files(paths: str) -> List[Tuple[str, str]]:
  """(key, abspath) for the comma-separated files/directories in ``paths``."""
  out = []
  for raw in (p.strip() for p in paths.split(",")):
    if not raw:
      continue
    path = os.path.abspath(os.path.expanduser(raw))
    if os.path.isfile(path):
      out.append((raw, path))
    elif os.path.isdir(path):
      found = _walk(path, lambda name, p: not name.startswith(".")
                    and not _looks_binary(p))
      out.extend((f"{raw.rstrip('/')}/{key}", p) for key, p in found)
    else:
      raise DataError(f"data.path entry {raw!r} is not a file or directory")
  return out


def _cap(files: List[Tuple[str, str, int, int]],
         max_bytes: int) -> List[Tuple[str, str, int, int]]:
  if max_bytes <= 0:
    return files
  out, total = [], 0
  for item in files:
    if total + item[2] > max_bytes:
      break
    out.append(item)
    total += item[2]
  return out


# Warn when more than this share of a corpus is not UTF-8 (binary files).
REPLACEMENT_WARN_FRACTION = 0.001


def _warn_if_binary(n_replaced: int, n_bytes: int, worst: str) -> None:
  if n_bytes and n_replaced > REPLACEMENT_WARN_FRACTION * n_bytes:
    import warnings  # pylint: disable=g-import-not-at-top
    warnings.warn(f"corpus: {n_replaced:,} of {n_bytes:,} bytes are not UTF-8 "
                  f"text and were decoded as U+FFFD (most in {worst}); is "
                  "data.path pointing at binary files?", stacklevel=3)


def _read_docs(files: Sequence[Tuple[str, str, int, int]]) -> Tuple[List[str], str, int]:
  h = hashlib.sha256()
  docs, n_bytes = [], 0
  n_replaced, worst = 0, (0, "")
  for key, path, _, _ in files:
    with open(path, "rb") as f:
      raw = f.read()
    h.update(key.encode("utf-8") + b"\0" + len(raw).to_bytes(8, "little"))
    h.update(raw)
    n_bytes += len(raw)
    docs.append(raw.decode("utf-8", errors="replace"))
    bad = docs[-1].count("\ufffd")
    n_replaced += bad
    worst = max(worst, (bad, key))
  _warn_if_binary(n_replaced, n_bytes, worst[1])
  return docs, h.hexdigest(), n_bytes


def corpus_from_files(name: str, files: List[Tuple[str, str]], *,
                      max_bytes: int = 0, cache_dir: str = "",
                      extra_metadata: Optional[Dict[str, object]] = None
                      ) -> Corpus:
  """A ``Corpus`` over ``files`` in corpus order, capped at ``max_bytes``."""
  stats = []
  for key, path in sorted(files, key=lambda kp: _order_key(kp[0])):
    st = os.stat(path)
    stats.append((key, path, st.st_size, st.st_mtime_ns))
  stats = _cap(stats, max_bytes)
  if not stats or sum(s[2] for s in stats) == 0:
    what = "files" if not stats else "non-empty files"
    hint = (f" (max_corpus_bytes={max_bytes} is smaller than the first file)"
            if max_bytes > 0 and files else "")
    raise DataError(f"corpus {name!r} has no {what}{hint}; point data.path at "
                    "text files or directories containing text")
  manifest = json.dumps([name, max_bytes, [s[:1] + s[2:] for s in stats]])
  manifest_key = hashlib.sha256(manifest.encode("utf-8")).hexdigest()
  manifest_path = os.path.join(resolve_cache_dir(cache_dir),
                               f"manifest-{manifest_key[:24]}.json")
  state: Dict[str, object] = {}

  def load() -> List[str]:
    if "docs" not in state:
      docs, sha, n_bytes = _read_docs(stats)
      state.update(docs=docs, sha256=sha, n_bytes=n_bytes)
    return state["docs"]  # type: ignore[return-value]

  cached = None
  if os.path.exists(manifest_path):
    try:
      with open(manifest_path) as f:
        cached = json.load(f)
    except (OSError, ValueError):
      cached = None
  if cached is None:
    load()
    cached = {"sha256": state["sha256"], "n_bytes": state["n_bytes"]}
    atomic_write_bytes(manifest_path, json.dumps(cached).encode("utf-8"))
  metadata: Dict[str, object] = {
      "name": name,
      "sha256": cached["sha256"],
      "n_files": len(stats),
      "n_bytes": cached["n_bytes"],
      "max_corpus_bytes": max_bytes,
      "order": "sha256(relative path)",
  }
  metadata.update(extra_metadata or {})
  corpus = Corpus(name=name, sha256=str(cached["sha256"]), metadata=metadata,
                  loader=load, keys=tuple(s[0] for s in stats),
                  sizes=tuple(s[2] for s in stats))
  if "docs" in state:
    corpus._documents = state["docs"]  # pylint: disable=protected-access
  return corpus


# ---------------------------------------------------------------- entry points

_MEMO: Dict[Tuple, Corpus] = {}


def stdlib_corpus(max_bytes: int = 0, cache_dir: str = "") -> Corpus:
  """The embedded default corpus (memoised per process)."""
  root = sysconfig.get_paths()["stdlib"]
  memo_key = ("stdlib", root, max_bytes, resolve_cache_dir(cache_dir))
  if memo_key not in _MEMO:
    extra = {"python_version": sys.version.split()[0],
             "implementation": sys.implementation.name,
             "stdlib_path": root,
             "includes": "*.py under stdlib excl. site-packages/dist-packages"}
    _MEMO[memo_key] = corpus_from_files("stdlib", stdlib_files(),
                                        max_bytes=max_bytes,
                                        cache_dir=cache_dir,
                                        extra_metadata=extra)
  return _MEMO[memo_key]


def files_corpus(paths: str, max_bytes: int = 0, cache_dir: str = "") -> Corpus:
  """Local files/directories; memoised per process by the file list + stats."""
  files = local_files(paths)
  sig = tuple((k, os.stat(p).st_size, os.stat(p).st_mtime_ns) for k, p in files)
  memo_key = ("files", sig, max_bytes, resolve_cache_dir(cache_dir))
  if memo_key not in _MEMO:
    _MEMO[memo_key] = corpus_from_files("files", files, max_bytes=max_bytes,
                                        cache_dir=cache_dir,
                                        extra_metadata={"path": paths})
  return _MEMO[memo_key]


def clear_memo() -> None:
  """Drops the in-process corpus memo (tests, or to free memory)."""
  _MEMO.clear()
