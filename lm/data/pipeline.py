"""Packing, train/val split and resumable batch iterators.

In-memory corpora (``default`` and ``files`` sources):

* Token stream: documents in corpus order, each followed by EOS.
* Packing: the stream is cut into non-overlapping rows of ``seq_len + 1``
  tokens (inputs = row[:-1], targets = row[1:]); the tail shorter than a row
  is dropped. Rows are a zero-copy view of the stream, so concatenating them
  gives the stream back in order.
* Split: the LAST ``ceil(val_fraction * n_rows)`` rows are validation, the rest
  training; train and val token ranges are therefore disjoint (only the one
  document straddling the cut has text on both sides). Corpus order is
  pseudo-random over files (see ``corpus.py``), so the tail is a
  representative sample of files.
* Validation batches: val rows in order, ``batch_size`` per batch; a fixed list.
* Training: epoch e visits the training rows in the order
  ``np.random.default_rng([seed, e]).permutation(n_train)``, ``batch_size``
  rows per step, the remainder of each epoch dropped. The batch at step s is a
  pure function of (seed, s): the iterator state is just ``{"step": s}``.
* Processes: process p of P gets rows [p*B/P, (p+1)*B/P) of every global batch.

Token arrays are cached on disk as
``<cache_dir>/tokens-<corpus sha256[:16]>-<tokenizer fingerprint>.npy`` and
memoised in-process, so rebuilding a dataset in the same process is ~free.
"""
from __future__ import annotations

import logging
import math
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from lm.config import DataConfig
from lm.data import corpus as corpus_lib
from lm.data import tokenizers as tok_lib
from lm.data.corpus import Corpus, DataError

_LOG = logging.getLogger(__name__)

_TOKENS_MEMO: Dict[Tuple[str, str, str], np.ndarray] = {}


def local_rows(batch_size: int, process_index: int, process_count: int) -> slice:
  """This process's rows of a global batch (one-line error if not divisible)."""
  if not isinstance(batch_size, int) or batch_size <= 0:
    raise DataError(f"batch_size must be a positive integer, got {batch_size!r}")
  if process_count <= 0 or not 0 <= process_index < process_count:
    raise DataError(f"process_index={process_index} must be in "
                    f"[0, process_count={process_count})")
  if batch_size % process_count:
    raise DataError(f"global batch size {batch_size} must be divisible by the "
                    f"number of processes {process_count}")
  b_local = batch_size // process_count
  return slice(process_index * b_local, (process_index + 1) * b_local)


def corpus_tokens(corpus: Corpus, tokenizer: tok_lib.Tokenizer,
                  cache_dir: str = "") -> np.ndarray:
  """The corpus token stream (docs + EOS), from memo, disk cache, or encoding."""
  cache_root = corpus_lib.resolve_cache_dir(cache_dir)
  key = (corpus.sha256, tokenizer.fingerprint(), cache_root)
  if key in _TOKENS_MEMO:
    return _TOKENS_MEMO[key]
  path = os.path.join(cache_root, f"tokens-{corpus.sha256[:16]}-"
                      f"{tokenizer.fingerprint()}.npy")
  tokens = None
  if os.path.isfile(path):
    try:
      tokens = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
      _LOG.warning("ignoring unreadable token cache %s: %s", path, e)
  if tokens is None:
    tokens = tokenizer.encode_documents(corpus.documents())
    try:
      os.makedirs(cache_root, exist_ok=True)
      tmp = f"{path}.{os.getpid()}.tmp.npy"
      np.save(tmp, tokens, allow_pickle=False)
      os.replace(tmp, path)
    except OSError as e:
      _LOG.warning("could not write token cache %s: %s", path, e)
  tokens.setflags(write=False)
  _TOKENS_MEMO[key] = tokens
  return tokens


def pack(tokens: np.ndarray, seq_len: int) -> np.ndarray:
  """[n_rows, seq_len + 1] non-overlapping view of ``tokens`` (tail dropped)."""
  row = seq_len + 1
  n_rows = len(tokens) // row
  return tokens[:n_rows * row].reshape(n_rows, row)


def split_rows(rows: np.ndarray, val_fraction: float,
               batch_size: int) -> Tuple[np.ndarray, np.ndarray]:
  """(train, val): the last ceil(val_fraction * n) rows are validation."""
  n = len(rows)
  n_val = math.ceil(val_fraction * n)
  n_train = n - n_val
  if n_val < batch_size or n_train < batch_size:
    raise DataError(
        f"corpus too small: {n} rows of seq_len+1={rows.shape[1]} tokens give "
        f"{n_train} train / {n_val} val rows, but one batch needs {batch_size};"
        " use more data, a smaller batch/seq_len, or a larger data.val_fraction")
  return rows[:n_train], rows[n_train:]


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
  return np.random.default_rng([seed, epoch]).permutation(n)


class ArrayTrainIterator:
  """Training batches over in-memory rows; state is ``{"step": s}``."""

  def __init__(self, rows: np.ndarray, batch_size: int, seed: int,
               process_index: int = 0, process_count: int = 1,
               state: Optional[Dict[str, Any]] = None):
    if not isinstance(seed, (int, np.integer)) or seed < 0:
      raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    self._rows = rows
    self._batch_size = batch_size
    self._seed = int(seed)
    self._local = local_rows(batch_size, process_index, process_count)
    self._steps_per_epoch = len(rows) // batch_size
    if self._steps_per_epoch == 0:
      raise DataError(f"{len(rows)} training rows < batch size {batch_size}")
    self._perms: Dict[int, np.ndarray] = {}
    self._step = 0
    if state is not None:
      self.set_state(state)

  @property
  def steps_per_epoch(self) -> int:
    return self._steps_per_epoch

  def get_state(self) -> Dict[str, Any]:
    return {"step": self._step}

  def set_state(self, state: Dict[str, Any]) -> None:
    step = state.get("step") if isinstance(state, dict) else None
    if not isinstance(step, (int, np.integer)) or step < 0:
      raise DataError(f"bad data iterator state {state!r}; expected "
                      "{'step': <non-negative int>}")
    self._step = int(step)

  def _perm(self, epoch: int) -> np.ndarray:
    if epoch not in self._perms:
      if len(self._perms) >= 2:
        self._perms.pop(min(self._perms))
      self._perms[epoch] = epoch_permutation(self._seed, epoch, len(self._rows))
    return self._perms[epoch]

  def row_indices(self, steps: np.ndarray) -> np.ndarray:
    """[len(steps), B_local] training-row indices for global ``steps``."""
    steps = np.asarray(steps, np.int64)
    epoch, j = np.divmod(steps, self._steps_per_epoch)
    offsets = (j[:, None] * self._batch_size
               + np.arange(self._local.start, self._local.stop)[None, :])
    out = np.empty_like(offsets)
    for e in np.unique(epoch):
      sel = epoch == e
      out[sel] = self._perm(int(e))[offsets[sel]]
    return out

  def take(self, k: int) -> np.ndarray:
    """The next ``k`` batches as int32 [k, B_local, seq_len + 1]."""
    idx = self.row_indices(np.arange(self._step, self._step + k))
    self._step += k
    return self._rows[idx].astype(np.int32)

  next_n = take

  def __iter__(self) -> "ArrayTrainIterator":
    return self

  def __next__(self) -> np.ndarray:
    return self.take(1)[0]


class Dataset:
  """What the trainer consumes; see ``build_dataset``."""
  tokenizer: tok_lib.Tokenizer
  metadata: Dict[str, Any]

  @property
  def vocab_size(self) -> int:
    return self.tokenizer.vocab_size

  def train_iterator(self, state: Optional[Dict[str, Any]] = None):
    raise NotImplementedError

  def eval_batches(self, n_batches: int) -> List[np.ndarray]:
    raise NotImplementedError


class ArrayDataset(Dataset):
  """An in-memory token stream, packed and split (module docstring)."""

  def __init__(self, tokens: np.ndarray, tokenizer: tok_lib.Tokenizer,
               seq_len: int, val_fraction: float, *, batch_size: int,
               seed: int, process_index: int = 0, process_count: int = 1,
               corpus_metadata: Optional[Dict[str, Any]] = None,
               source: str = "memory"):
    self._local = local_rows(batch_size, process_index, process_count)
    self.tokenizer = tokenizer
    self.rows = pack(tokens, seq_len)
    self.train_rows, self.val_rows = split_rows(self.rows, val_fraction,
                                                batch_size)
    self._batch_size = batch_size
    self._seed = seed
    self._process = (process_index, process_count)
    row = seq_len + 1
    self.metadata = {
        "source": source,
        "corpus": dict(corpus_metadata or {}),
        "tokenizer": tokenizer.metadata(),
        "seq_len": seq_len,
        "n_tokens": int(len(tokens)),
        "n_train_rows": int(len(self.train_rows)),
        "n_val_rows": int(len(self.val_rows)),
        "n_train_tokens": int(len(self.train_rows) * row),
        "n_val_tokens": int(len(self.val_rows) * row),
        "n_val_batches": int(len(self.val_rows) // batch_size),
        "steps_per_epoch": int(len(self.train_rows) // batch_size),
        "val_split": f"last ceil({val_fraction} * rows) packed rows",
        "batch_size": batch_size,
        "process_count": process_count,
    }

  def train_iterator(self, state: Optional[Dict[str, Any]] = None
                     ) -> ArrayTrainIterator:
    return ArrayTrainIterator(self.train_rows, self._batch_size, self._seed,
                              *self._process, state=state)

  def eval_batches(self, n_batches: int) -> List[np.ndarray]:
    """The first min(n_batches, available) val batches, this process's rows."""
    n = min(int(n_batches), len(self.val_rows) // self._batch_size)
    if n < n_batches:
      _LOG.warning("only %d validation batches available (asked for %d)", n,
                   n_batches)
    val = self.val_rows[:n * self._batch_size].reshape(
        n, self._batch_size, -1)[:, self._local]
    return list(val.astype(np.int32))


def load_corpus(cfg: DataConfig) -> Corpus:
  if cfg.source == "default":
    return corpus_lib.stdlib_corpus(cfg.max_corpus_bytes, cfg.cache_dir)
  if cfg.source == "files":
    if not cfg.path:
      raise DataError("data.source='files' needs data.path=<file or dir>")
    return corpus_lib.files_corpus(cfg.path, cfg.max_corpus_bytes,
                                   cfg.cache_dir)
  raise DataError(f"data.source must be default, files or tfds, got "
                  f"{cfg.source!r}")


def build_dataset(cfg: DataConfig, *, batch_size: int, seed: int,
                  process_index: int = 0, process_count: int = 1) -> Dataset:
  """The dataset ``cfg`` describes; ``batch_size`` is the GLOBAL batch size."""
  cfg.validate()
  local_rows(batch_size, process_index, process_count)
  if cfg.source == "tfds":
    from lm.data import tfds_source  # pylint: disable=g-import-not-at-top
    return tfds_source.TfdsDataset(cfg, batch_size=batch_size, seed=seed,
                                   process_index=process_index,
                                   process_count=process_count)
  corpus = load_corpus(cfg)
  # Validation is the tail of the packed stream, i.e. the last documents:
  # keep them (with a margin for uneven tokens/char) out of tokenizer training.
  tokenizer = tok_lib.build_tokenizer(
      cfg, corpus, holdout_fraction=min(0.5, 2 * cfg.val_fraction + 0.01))
  tokens = corpus_tokens(corpus, tokenizer, cfg.cache_dir)
  return ArrayDataset(tokens, tokenizer, cfg.seq_len, cfg.val_fraction,
                      batch_size=batch_size, seed=seed,
                      process_index=process_index, process_count=process_count,
                      corpus_metadata=corpus.metadata, source=cfg.source)


def clear_memo() -> None:
  """Drops in-process corpus and token memos."""
  _TOKENS_MEMO.clear()
  corpus_lib.clear_memo()
