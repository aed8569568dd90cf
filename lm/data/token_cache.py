"""Token cache: each (source, split, tokenizer) is tokenized once, to disk.

Every run of a sweep and every host then reads rows straight from a
memory-mapped array; no tokenizer runs in the step loop.

Layout, under ``<cache_dir>/tokens/``::

  <name>-<key[:20]>/        one cache (name: e.g. "stdlib-train", "tfds_lm1b-val")
    tokens.bin              token ids, documents in source order, each followed by
                            EOS; little-endian uint16 when the vocabulary fits
                            (<= 65536 ids), else int32
    doc_offsets.npy         int64 [n_documents + 1]: document d is
                            tokens[off[d]:off[d + 1]] (its EOS included)
    manifest.json           written last; schema ``MANIFEST_KEYS`` below
  <name>-<key[:20]>.lock    flock held while building: concurrent builders wait

``key`` = sha256 of the JSON of ``[FORMAT_VERSION, source descriptor,
tokenizer metadata]``; the source descriptor names the source, its content
hash or version, the split and the rule that selected its documents.

Opening checks that the manifest parses, has this format version and key, and
that both files have the sizes and sha256 it records (the sha256 once per
process and file). A cache failing any check is rebuilt, with one warning
line naming the reason. Builds write into ``<dir>.tmp-<pid>`` and rename it
into place after fsync, so a killed build leaves no directory that is later
trusted (the next build removes the leftover).

Building: the parent reads text in chunks and writes tokens in order; the
tokenizer runs in ``workers`` spawned processes (in-process when 1).
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import logging
import os
import re
import shutil
import time
from typing import (Any, Callable, Dict, Iterator, List, Optional,
                    Sequence, Tuple)

import numpy as np

from lm.data import encode as encode_lib
from lm.data import tokenizers as tok_lib
from lm.data.corpus import DataError, resolve_cache_dir

_LOG = logging.getLogger(__name__)

FORMAT = "scalinglm-token-cache"
FORMAT_VERSION = 1
TOKENS_FILE, OFFSETS_FILE, MANIFEST_FILE = ("tokens.bin", "doc_offsets.npy",
                                            "manifest.json")
MANIFEST_KEYS = ("format", "format_version", "key", "source", "tokenizer",
                 "dtype", "eos_id", "n_documents", "n_tokens", "text_bytes",
                 "tokens_sha256", "doc_offsets_sha256", "build")
CHUNK_BYTES = 4 << 20          # text per tokenizer task
_HASH_BLOCK = 16 << 20

_VERIFIED: Dict[Tuple[str, int, int], str] = {}
_MEMO: Dict[Tuple[str, str], Tuple["TokenStream", Any]] = {}


class DocSource:
  """What a cache is built from: documents in order, read in chunks.

  Subclasses set ``name`` (short, for the directory name), ``n_documents``
  and ``text_bytes`` (an estimate, or 0 if unknown) and implement
  ``descriptor`` and ``chunks``.
  """
  name: str = "source"
  n_documents: int = 0
  text_bytes: int = 0

  def descriptor(self) -> Dict[str, Any]:
    """JSON-friendly identity: source, version/content hash, split, rule."""
    raise NotImplementedError

  def chunks(self, chunk_bytes: int) -> Iterator[List[tok_lib.Text]]:
    """The documents in order, as lists of about ``chunk_bytes`` of text."""
    raise NotImplementedError


class ListSource(DocSource):
  """Documents held in memory (embedded corpus, local files), loaded lazily:
  ``loader`` runs only when the cache has to be built."""

  def __init__(self, name: str, descriptor: Dict[str, Any],
               loader: Callable[[], Sequence[tok_lib.Text]], n_documents: int,
               text_bytes: int = 0):
    self.name, self._descriptor, self._loader = name, descriptor, loader
    self.n_documents, self.text_bytes = n_documents, text_bytes

  def descriptor(self) -> Dict[str, Any]:
    return self._descriptor

  def chunks(self, chunk_bytes: int) -> Iterator[List[tok_lib.Text]]:
    out, size = [], 0
    for d in self._loader():
      out.append(d)
      size += len(d)
      if size >= chunk_bytes:
        yield out
        out, size = [], 0
    if out:
      yield out


@dataclasses.dataclass(frozen=True)
class TokenStream:
  """A tokenized split: read-only tokens (memory-mapped when cached)."""
  tokens: np.ndarray          # [n_tokens], uint16 or int32
  doc_offsets: np.ndarray     # int64 [n_documents + 1]
  manifest: Dict[str, Any]
  path: Optional[str]         # cache directory; None if built in memory

  @property
  def n_documents(self) -> int:
    return len(self.doc_offsets) - 1

  @classmethod
  def from_array(cls, tokens: np.ndarray,
                 doc_offsets: Optional[np.ndarray] = None) -> "TokenStream":
    """An uncached stream over ``tokens`` (one document unless offsets given)."""
    tokens = np.asarray(tokens)
    if doc_offsets is None:
      doc_offsets = np.array([0, len(tokens)], np.int64)
    offsets = np.asarray(doc_offsets, np.int64)
    manifest = {"n_documents": len(offsets) - 1, "n_tokens": len(tokens),
                "tokens_sha256": hashlib.sha256(tokens.tobytes()).hexdigest(),
                "dtype": tokens.dtype.name}
    return cls(tokens=tokens, doc_offsets=offsets, manifest=manifest, path=None)

  def metadata(self) -> Dict[str, Any]:
    m = self.manifest
    return {"n_documents": m["n_documents"], "n_tokens": m["n_tokens"],
            "tokens_sha256": m["tokens_sha256"], "dtype": m["dtype"],
            "cache": self.path}


def cache_key(source: DocSource, tokenizer: tok_lib.Tokenizer) -> str:
  blob = json.dumps([FORMAT_VERSION, source.descriptor(), tokenizer.metadata()],
                    sort_keys=True, default=str)
  return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def cache_path(source: DocSource, tokenizer: tok_lib.Tokenizer,
               cache_dir: str = "") -> str:
  safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", source.name)[:60]
  return os.path.join(resolve_cache_dir(cache_dir), "tokens",
                      f"{safe}-{cache_key(source, tokenizer)[:20]}")


# --------------------------------------------------------------- build / open


def _write(out_dir: Optional[str], source: DocSource,
           tokenizer: tok_lib.Tokenizer, key: str, workers: int
           ) -> Tuple[Dict[str, Any], Optional[np.ndarray], np.ndarray]:
  """Tokenizes ``source``; writes tokens.bin into ``out_dir`` (or keeps them
  in memory when None). Returns (manifest, in-memory tokens or None, offsets)."""
  t0 = time.time()
  h = hashlib.sha256()
  parts: List[np.ndarray] = []
  lengths: List[np.ndarray] = []
  text_bytes = 0
  dtype = tok_lib.token_dtype(tokenizer.vocab_size)
  f = open(os.path.join(out_dir, TOKENS_FILE), "wb") if out_dir else None
  try:
    def counted(it):
      nonlocal text_bytes
      for texts in it:
        text_bytes += sum(len(t) if isinstance(t, bytes)
                          else len(t.encode("utf-8")) for t in texts)
        yield texts
    for stream, lens in encode_lib.encode_chunks(
        tokenizer, counted(source.chunks(CHUNK_BYTES)), workers):
      raw = stream.astype(dtype.newbyteorder("<"), copy=False).tobytes()
      h.update(raw)
      lengths.append(lens)
      if f is not None:
        f.write(raw)
      else:
        parts.append(stream.astype(dtype, copy=False))
    if f is not None:
      f.flush()
      os.fsync(f.fileno())
  finally:
    if f is not None:
      f.close()
  lens = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
  offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
  if not len(lens):
    raise DataError(f"{source.name}: no documents to tokenize")
  manifest = {
      "format": FORMAT, "format_version": FORMAT_VERSION, "key": key,
      "source": source.descriptor(), "tokenizer": tokenizer.metadata(),
      "dtype": dtype.name, "eos_id": tokenizer.eos_id,
      "n_documents": int(len(lens)), "n_tokens": int(offsets[-1]),
      "text_bytes": int(text_bytes), "tokens_sha256": h.hexdigest(),
      "doc_offsets_sha256": hashlib.sha256(
          offsets.astype("<i8").tobytes()).hexdigest(),
      "build": {"workers": workers, "seconds": round(time.time() - t0, 3),
                "created_utc": datetime.datetime.now(
                    datetime.timezone.utc).isoformat(timespec="seconds")},
  }
  tokens = np.concatenate(parts) if f is None else None
  return manifest, tokens, offsets


def _file_sha256(path: str) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(_HASH_BLOCK), b""):
      h.update(block)
  return h.hexdigest()


def _offsets_sha256(path: str) -> str:
  offsets = np.load(path, mmap_mode="r", allow_pickle=False)
  return hashlib.sha256(np.asarray(offsets, "<i8").tobytes()).hexdigest()


def _memo_sha256(path: str, digest: Callable[[str], str]) -> str:
  """``digest(path)``, computed once per process and (size, mtime) of path."""
  st = os.stat(path)
  memo_key = (path, st.st_size, st.st_mtime_ns)
  if memo_key not in _VERIFIED:
    _VERIFIED[memo_key] = digest(path)
  return _VERIFIED[memo_key]


def _check(path: str, key: str) -> Tuple[Optional[TokenStream], str]:
  """(stream, "") if the cache at ``path`` is valid, else (None, reason)."""
  mpath = os.path.join(path, MANIFEST_FILE)
  if not os.path.isfile(mpath):
    return None, "no manifest"
  try:
    with open(mpath) as f:
      m = json.load(f)
  except (OSError, ValueError) as e:
    return None, f"unreadable manifest ({e})"
  missing = [k for k in MANIFEST_KEYS if k not in m] if isinstance(m, dict) \
      else ["all keys"]
  if missing:
    return None, f"manifest lacks {missing[0]}"
  if m["format"] != FORMAT or m["format_version"] != FORMAT_VERSION:
    return None, f"format version {m['format_version']} != {FORMAT_VERSION}"
  if m["key"] != key:
    return None, "manifest key does not match the source and tokenizer"
  tpath, opath = (os.path.join(path, TOKENS_FILE),
                  os.path.join(path, OFFSETS_FILE))
  dtype = np.dtype(m["dtype"]).newbyteorder("<")
  try:
    size = os.path.getsize(tpath)
    if size != m["n_tokens"] * dtype.itemsize or not m["n_tokens"]:
      return None, (f"{TOKENS_FILE} has {size} bytes, manifest says "
                    f"{m['n_tokens']} x {dtype.itemsize}")
    if _memo_sha256(tpath, _file_sha256) != m["tokens_sha256"]:
      return None, f"{TOKENS_FILE} sha256 differs from the manifest"
    offsets = np.load(opath, mmap_mode="r", allow_pickle=False)
    if (len(offsets) != m["n_documents"] + 1
        or _memo_sha256(opath, _offsets_sha256) != m["doc_offsets_sha256"]):
      return None, f"{OFFSETS_FILE} does not match the manifest"
  except (OSError, ValueError) as e:
    return None, f"unreadable cache files ({e})"
  tokens = np.memmap(tpath, dtype=dtype, mode="r", shape=(m["n_tokens"],))
  return TokenStream(tokens=tokens, doc_offsets=offsets, manifest=m,
                     path=path), ""


@contextlib.contextmanager
def _build_lock(path: str):
  import fcntl  # pylint: disable=g-import-not-at-top  (POSIX only)
  with open(path + ".lock", "a+") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def _build_on_disk(path: str, source: DocSource, tokenizer: tok_lib.Tokenizer,
                   key: str, workers: int) -> TokenStream:
  parent = os.path.dirname(path)
  for leftover in os.listdir(parent):  # killed builds (we hold the lock)
    if leftover.startswith(os.path.basename(path) + ".tmp-"):
      shutil.rmtree(os.path.join(parent, leftover), ignore_errors=True)
  tmp = f"{path}.tmp-{os.getpid()}"
  os.makedirs(tmp)
  try:
    manifest, _, offsets = _write(tmp, source, tokenizer, key, workers)
    with open(os.path.join(tmp, OFFSETS_FILE), "wb") as f:
      np.save(f, offsets, allow_pickle=False)
      f.flush()
      os.fsync(f.fileno())
    with open(os.path.join(tmp, MANIFEST_FILE), "w") as f:
      json.dump(manifest, f, indent=1, sort_keys=True)
      f.flush()
      os.fsync(f.fileno())
    if os.path.exists(path):
      shutil.rmtree(path)
    os.rename(tmp, path)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  stream, reason = _check(path, key)
  if stream is None:
    raise DataError(f"token cache {path} is invalid right after building it "
                    f"({reason}); is the disk full?")
  return stream


def load_or_build(source: DocSource, tokenizer: tok_lib.Tokenizer, *,
                  cache_dir: str = "", use_cache: bool = True,
                  workers: int = 0) -> TokenStream:
  """The token stream of ``source``: opened from its cache, built if missing
  or invalid (one warning line), or tokenized in memory if not ``use_cache``."""
  key = cache_key(source, tokenizer)
  path = cache_path(source, tokenizer, cache_dir)
  memo = (path if use_cache else "memory", key)
  if memo in _MEMO and _unchanged(_MEMO[memo]):
    return _MEMO[memo][0]
  n_workers = encode_lib.resolve_workers(workers, tokenizer, source.text_bytes)
  stream = None
  if use_cache:
    stream, reason = _check(path, key)
    if stream is None:
      try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with _build_lock(path):
          stream, reason2 = _check(path, key)  # built while we waited?
          if stream is None:
            if os.path.exists(path):
              _LOG.warning("rebuilding token cache %s: %s", path, reason2)
            stream = _build_on_disk(path, source, tokenizer, key, n_workers)
      except OSError as e:
        _LOG.warning("could not write token cache %s (%s); tokenizing in "
                     "memory", path, e)
  if stream is None:
    manifest, tokens, offsets = _write(None, source, tokenizer, key, n_workers)
    tokens.setflags(write=False)
    stream = TokenStream(tokens=tokens, doc_offsets=offsets,
                         manifest=manifest, path=None)
  _MEMO[memo] = (stream, _stat(stream))
  return stream


def _stat(stream: TokenStream) -> Optional[Tuple[int, int]]:
  if stream.path is None:
    return None
  try:
    st = os.stat(os.path.join(stream.path, TOKENS_FILE))
  except OSError:
    return (-1, -1)
  return (st.st_size, st.st_mtime_ns)


def _unchanged(entry: Tuple[TokenStream, Optional[Tuple[int, int]]]) -> bool:
  """A memoised cache is reused only while its tokens file is untouched."""
  return _stat(entry[0]) == entry[1]


def find(source: DocSource, tokenizer: tok_lib.Tokenizer,
         cache_dir: str = "") -> Optional[Dict[str, Any]]:
  """The manifest of a valid cache for ``source`` (no building), else None."""
  path = cache_path(source, tokenizer, cache_dir)
  stream, _ = _check(path, cache_key(source, tokenizer))
  return None if stream is None else stream.manifest


def clear_memo() -> None:
  _MEMO.clear()
  _VERIFIED.clear()
