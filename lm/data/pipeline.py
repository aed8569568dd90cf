"""Packing, resumable batch iterators, and the ``Dataset`` the trainer reads.

Every source (embedded corpus, local files, tfds) takes one path:

* Split: whole documents are held out for validation (``lm.data.split``);
  tfds uses its own validation split when it has one.
* Tokens: each side is tokenized once into the token cache
  (``lm.data.token_cache``): documents in order, each followed by EOS.
* Packing: a side's stream is cut into non-overlapping rows of ``seq_len + 1``
  tokens (inputs = row[:-1], targets = row[1:]); the tail shorter than a row is
  dropped. Rows are a zero-copy view of the (memory-mapped) stream.
* Training: epoch e visits the training rows in the order
  ``np.random.default_rng([seed, e]).permutation(n_train)``, ``batch_size``
  rows per step, the remainder of each epoch dropped. The batch at step s is a
  pure function of (seed, s): the iterator state is just ``{"step": s}``.
* Processes: process p of P reads rows [p*B/P, (p+1)*B/P) of every global
  batch, and only those rows.
* Evaluation: ``Dataset.eval_set(n_tokens)`` (``lm.data.eval_set``).
* Unique training tokens: n_train_rows * seq_len target tokens; ``epochs`` of
  a run = D / that (``count_train_tokens`` computes it without training).

``data.token_cache=False`` tokenizes in memory instead (same rows); for tfds
it trains from the uncached stream packer of ``tfds_source``.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional

import numpy as np

from lm.config import DataConfig
from lm.data import corpus as corpus_lib
from lm.data import eval_set as eval_lib
from lm.data import sources as sources_lib
from lm.data import token_cache
from lm.data import tokenizers as tok_lib
from lm.data.corpus import DataError
from lm.data.dataset import Dataset, local_rows
from lm.data.token_cache import TokenStream


def pack(tokens: np.ndarray, seq_len: int) -> np.ndarray:
  """[n_rows, seq_len + 1] non-overlapping view of ``tokens`` (tail dropped)."""
  row = seq_len + 1
  n_rows = len(tokens) // row
  return tokens[:n_rows * row].reshape(n_rows, row)


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


class ArrayDataset(Dataset):
  """Training and validation token streams, packed (module docstring)."""

  def __init__(self, train: TokenStream, val: TokenStream,
               tokenizer: tok_lib.Tokenizer, seq_len: int, *, batch_size: int,
               seed: int, process_index: int = 0, process_count: int = 1,
               metadata: Optional[Dict[str, Any]] = None):
    local_rows(batch_size, process_index, process_count)
    self.tokenizer = tokenizer
    self.train_stream, self.val = train, val
    self.train_rows = pack(train.tokens, seq_len)
    self._seq_len, self._batch_size, self._seed = seq_len, batch_size, seed
    self._process = (process_index, process_count)
    self._eval_sets: Dict[int, eval_lib.EvalSet] = {}
    n_val_rows = len(val.tokens) // (seq_len + 1)
    if len(self.train_rows) < batch_size or n_val_rows < 1:
      raise DataError(
          f"corpus too small: {len(self.train_rows)} training rows and "
          f"{n_val_rows} validation rows of seq_len+1={seq_len + 1} tokens, "
          f"but one batch needs {batch_size} training rows and evaluation at "
          "least one validation row; use more data, a smaller batch/seq_len, "
          "or a larger data.val_fraction")
    self.unique_train_tokens = int(len(self.train_rows) * seq_len)
    self.metadata = dict(metadata or {})
    self.metadata.update({
        "tokenizer": tokenizer.metadata(), "seq_len": seq_len,
        "train": train.metadata(), "val": val.metadata(),
        "n_train_rows": int(len(self.train_rows)),
        "n_val_rows": int(n_val_rows),
        "unique_train_tokens": self.unique_train_tokens,
        "steps_per_epoch": int(len(self.train_rows) // batch_size),
        "batch_size": batch_size, "process_count": process_count,
    })

  def train_iterator(self, state: Optional[Dict[str, Any]] = None
                     ) -> ArrayTrainIterator:
    return ArrayTrainIterator(self.train_rows, self._batch_size, self._seed,
                              *self._process, state=state)

  def eval_set(self, n_tokens: int) -> eval_lib.EvalSet:
    """The fixed eval set of ``n_tokens`` target tokens (all processes hold
    all of it; ``lm.evaluate`` feeds each process only its rows)."""
    if n_tokens not in self._eval_sets:
      self._eval_sets[n_tokens] = eval_lib.make_eval_set(
          self.val.tokens, self.val.doc_offsets, self._seq_len, n_tokens)
    return self._eval_sets[n_tokens]


def _streams(cfg: DataConfig, sources: sources_lib.Sources,
             tokenizer: tok_lib.Tokenizer, side: str,
             use_cache: Optional[bool] = None) -> TokenStream:
  use_cache = cfg.token_cache if use_cache is None else use_cache
  return token_cache.load_or_build(getattr(sources, side), tokenizer,
                                   cache_dir=cfg.cache_dir,
                                   use_cache=use_cache,
                                   workers=cfg.cache_workers)


def build_dataset(cfg: DataConfig, *, batch_size: int, seed: int,
                  process_index: int = 0, process_count: int = 1) -> Dataset:
  """The dataset ``cfg`` describes; ``batch_size`` is the GLOBAL batch size."""
  cfg.validate()
  local_rows(batch_size, process_index, process_count)
  sources = sources_lib.sources_for(cfg)
  tokenizer = tok_lib.build_tokenizer(cfg, sources.sp_corpus)
  metadata = {"source": cfg.source, "token_cache": cfg.token_cache,
              **sources.metadata}
  if cfg.source == "tfds" and not cfg.token_cache:
    val = _streams(cfg, sources, tokenizer, "val", use_cache=False)
    return sources_lib.source_module(cfg.source).StreamingTfdsDataset(
        cfg, sources, tokenizer, val, batch_size=batch_size, seed=seed,
        process_index=process_index, process_count=process_count,
        metadata=metadata)
  val = _streams(cfg, sources, tokenizer, "val")
  train = _streams(cfg, sources, tokenizer, "train")
  return ArrayDataset(train, val, tokenizer, cfg.seq_len,
                      batch_size=batch_size, seed=seed,
                      process_index=process_index,
                      process_count=process_count, metadata=metadata)


def count_train_tokens(cfg: Any) -> Optional[int]:
  """Unique training target tokens (n_train_rows * seq_len) of the data
  config ``cfg`` (a DataConfig, or a ConfigDict / dict of its fields), without
  training: exact when the training split's token cache exists, or when it is
  cheap to build (byte tokenizer on an in-memory corpus); None when unknown
  (tfds or an untrained SentencePiece model without a cache, tfds missing)."""
  if not isinstance(cfg, DataConfig):
    plain = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    cfg = DataConfig(**plain)
  cfg.validate()
  try:
    sources = sources_lib.sources_for(cfg)
  except ImportError:
    return None
  tokenizer = sources_lib.cached_tokenizer(cfg, sources)
  if tokenizer is None:
    return None
  manifest = token_cache.find(sources.train, tokenizer, cfg.cache_dir)
  if manifest is None:
    if cfg.source == "tfds" or not isinstance(tokenizer,
                                              tok_lib.ByteTokenizer):
      return None
    manifest = _streams(cfg, sources, tokenizer, "train").manifest
  return int(manifest["n_tokens"]) // (cfg.seq_len + 1) * cfg.seq_len


def epochs_of(tokens: float, unique_train_tokens: Optional[int]
              ) -> Optional[float]:
  """D / unique training tokens (None when the unique count is unknown)."""
  if not unique_train_tokens:
    return None
  return float(tokens) / float(unique_train_tokens)


def check_max_epochs(tokens: int, unique_train_tokens: Optional[int],
                     max_epochs: float) -> None:
  """One-line DataError if ``tokens`` exceeds max_epochs x unique tokens."""
  epochs = epochs_of(tokens, unique_train_tokens)
  if not max_epochs or epochs is None or epochs <= max_epochs:
    return
  more = math.ceil(tokens / max_epochs) - int(unique_train_tokens)
  raise DataError(
      f"this run trains on {tokens:,} tokens = {epochs:.3g} epochs of the "
      f"{unique_train_tokens:,} unique training tokens, above "
      f"train.max_epochs={max_epochs:g}; it needs {more:,} more unique tokens "
      "(more data, e.g. a larger data.max_corpus_bytes) or a larger "
      "train.max_epochs")


def clear_memo() -> None:
  """Drops in-process corpus and token-stream memos."""
  token_cache.clear_memo()
  corpus_lib.clear_memo()
