"""Streaming text from a prepared TFDS dataset (lm1b, c4, ...).

array_record datasets are read with ``builder.as_data_source`` (random access,
no TensorFlow) and shuffled with grain's lazy index shuffle
(``grain.MapDataset.range(n).shuffle(seed)``, one seed per epoch derived from
``(seed, epoch)``), so even c4-sized splits need no in-memory permutation.
tfrecord datasets need TensorFlow; when it is installed they are read
sequentially with ``builder.as_dataset`` (seeded 10k-record shuffle buffer,
resume by ``skip``), otherwise a one-line error says how to fix it.

Packing: records in epoch order, each tokenized and followed by EOS, form one
stream that continues across epochs; every global batch is the next
``B * (seq_len + 1)`` tokens, reshaped to [B, seq_len + 1]. Every process
reads the same global stream and keeps rows [p*B/P, (p+1)*B/P), so the
iterator state is identical on all processes: ``{"step", "epoch", "pos",
"offset"}`` = next token is token ``offset`` of record ``pos`` of ``epoch``.

Validation: ``data.tfds_val_split`` if set (read in order); otherwise the last
``ceil(val_fraction * n)`` records of the train split are held out (training
reads only the first ones). Validation batches are packed the same way, in
record order, and memoised.

SentencePiece on tfds trains on the first records of the train split in a
fixed (seed 0) shuffled order, up to ``max_corpus_bytes`` (64 MB if 0).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from typing import Any, Dict, List, Optional

import numpy as np

from lm.config import DataConfig
from lm.data import tokenizers as tok_lib
from lm.data.corpus import Corpus, DataError
from lm.data.pipeline import Dataset, local_rows

SP_SAMPLE_BYTES = 64 << 20
_TF_SHUFFLE_BUFFER = 10_000


def _tfds():
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ImportError("data.source='tfds' needs tensorflow-datasets and grain: "
                      "pip install 'scalinglm[tfds]'") from None
  return tfds


def _grain():
  try:
    import grain  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ImportError("data.source='tfds' needs grain: "
                      "pip install 'scalinglm[tfds]'") from None
  return grain


def _epoch_seed(seed: int, epoch: int) -> int:
  return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0] >> 1)


def open_builder(name: str, data_dir: str):
  """A prepared tfds builder, or a one-line DataError."""
  tfds = _tfds()
  if data_dir and not os.path.isdir(os.path.expanduser(data_dir)):
    raise DataError(f"data.tfds_data_dir={data_dir!r} does not exist")
  where = data_dir or "the default tfds data_dir (~/tensorflow_datasets)"
  try:
    builder = tfds.builder(name, data_dir=os.path.expanduser(data_dir) or None)
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(f"tfds dataset {name!r} not found in {where}: "
                    f"{str(e).splitlines()[0]}") from None
  if not builder.is_prepared():
    raise DataError(f"tfds dataset {name!r} is not prepared in {where}; run "
                    f"`tfds build {name} --data_dir=<dir> "
                    "--file_format=array_record` first")
  return builder


class _ArrayRecordReader:
  """Records [lo, hi) of a split, random access, optionally shuffled per epoch."""

  def __init__(self, builder, split: str, lo: int, hi: int, text_key: str,
               seed: Optional[int]):
    self._src = builder.as_data_source(split=split)
    self._lo, self.n_records = lo, hi - lo
    self._key, self._seed = text_key, seed
    self._order = {}

  def _indices(self, epoch: int, start: int, count: int) -> List[int]:
    pos = range(start, min(start + count, self.n_records))
    if self._seed is None:
      return [self._lo + p for p in pos]
    if epoch not in self._order:
      self._order = {epoch: _grain().MapDataset.range(self.n_records).shuffle(
          seed=_epoch_seed(self._seed, epoch))}
    order = self._order[epoch]
    return [self._lo + int(order[p]) for p in pos]

  def read(self, epoch: int, start: int, count: int) -> List[bytes]:
    idx = self._indices(epoch, start, count)
    getitems = getattr(self._src, "__getitems__", None)
    recs = getitems(idx) if getitems else [self._src[i] for i in idx]
    return [_text(r, self._key) for r in recs]


class _TfRecordReader:
  """Sequential reader for tfrecord datasets (needs TensorFlow)."""

  def __init__(self, builder, split: str, lo: int, hi: int, text_key: str,
               seed: Optional[int]):
    self._builder, self._split = builder, f"{split}[{lo}:{hi}]"
    self.n_records, self._key, self._seed = hi - lo, text_key, seed
    self._it, self._at = None, None

  def read(self, epoch: int, start: int, count: int) -> List[bytes]:
    tfds = _tfds()
    if self._at != (epoch, start):
      ds = self._builder.as_dataset(split=self._split, shuffle_files=False)
      if self._seed is not None:
        ds = ds.shuffle(_TF_SHUFFLE_BUFFER, seed=_epoch_seed(self._seed, epoch),
                        reshuffle_each_iteration=False)
      self._it = iter(tfds.as_numpy(ds.skip(start)))
    out = []
    for _ in range(min(count, self.n_records - start)):
      out.append(_text(next(self._it), self._key))
    self._at = (epoch, start + len(out))
    return out


def _text(record: Any, key: str) -> bytes:
  if not isinstance(record, dict) or key not in record:
    keys = sorted(record) if isinstance(record, dict) else type(record).__name__
    raise DataError(f"tfds records have no field data.text_key={key!r} "
                    f"(fields: {keys})")
  value = record[key]
  return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _make_reader(builder, split: str, lo: int, hi: int, text_key: str,
                 seed: Optional[int]):
  fmt = str(getattr(builder.info.file_format, "value", builder.info.file_format))
  if fmt == "array_record":
    return _ArrayRecordReader(builder, split, lo, hi, text_key, seed)
  try:
    import tensorflow  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    raise DataError(
        f"tfds dataset {builder.name!r} is stored as {fmt}, which needs "
        "TensorFlow: pip install tensorflow, or re-prepare it with "
        "`tfds build ... --file_format=array_record`") from None
  return _TfRecordReader(builder, split, lo, hi, text_key, seed)


def _encode(tokenizer: tok_lib.Tokenizer, texts: List[bytes]) -> List[np.ndarray]:
  """Each record's tokens followed by EOS."""
  eos = np.array([tokenizer.eos_id], np.int32)
  if isinstance(tokenizer, tok_lib.ByteTokenizer):
    ids = [np.frombuffer(t, np.uint8).astype(np.int32) for t in texts]
  else:
    ids = [np.asarray(tokenizer.encode(t.decode("utf-8", errors="replace")),
                      np.int32) for t in texts]
  return [np.concatenate([x, eos]) for x in ids]


class StreamPacker:
  """Packs a record reader's token stream into global batches (resumable)."""

  def __init__(self, reader, tokenizer: tok_lib.Tokenizer, seq_len: int,
               batch_size: int, local: slice, max_epochs: Optional[int] = None):
    if reader.n_records <= 0:
      raise DataError("tfds split has no records")
    self._reader, self._tok = reader, tokenizer
    self._row, self._batch_size, self._local = seq_len + 1, batch_size, local
    self._max_epochs = max_epochs
    self._avg = 64.0           # running mean tokens/record, sizes read-ahead
    self.set_state({"step": 0, "epoch": 0, "pos": 0, "offset": 0})

  def get_state(self) -> Dict[str, Any]:
    return {"step": self._step, "epoch": self._epoch, "pos": self._pos,
            "offset": self._offset}

  def set_state(self, state: Dict[str, Any]) -> None:
    keys = ("step", "epoch", "pos", "offset")
    if not isinstance(state, dict) or any(
        not isinstance(state.get(k), (int, np.integer)) or state[k] < 0
        for k in keys):
      raise DataError(f"bad tfds iterator state {state!r}; expected "
                      "non-negative ints for step, epoch, pos, offset")
    self._step, self._epoch, self._pos, self._offset = (int(state[k])
                                                        for k in keys)
    self._ahead: Dict[int, np.ndarray] = {}
    self._ahead_epoch = self._epoch

  def _record(self, need: int) -> np.ndarray:
    if self._ahead_epoch != self._epoch:
      self._ahead, self._ahead_epoch = {}, self._epoch
    if self._pos not in self._ahead:
      count = int(min(4096, max(16, need / self._avg + 1)))
      toks = _encode(self._tok, self._reader.read(self._epoch, self._pos, count))
      self._avg = 0.9 * self._avg + 0.1 * float(np.mean([len(t) for t in toks]))
      self._ahead = {self._pos + i: t for i, t in enumerate(toks)}
    return self._ahead[self._pos]

  def _tokens(self, n: int) -> Optional[np.ndarray]:
    parts, need = [], n
    while need > 0:
      if self._max_epochs is not None and self._epoch >= self._max_epochs:
        return None
      rec = self._record(need)
      piece = rec[self._offset:self._offset + need]
      parts.append(piece)
      need -= len(piece)
      self._offset += len(piece)
      if self._offset >= len(rec):
        self._pos, self._offset = self._pos + 1, 0
        if self._pos >= self._reader.n_records:
          self._epoch, self._pos = self._epoch + 1, 0
    return np.concatenate(parts)

  def __iter__(self) -> "StreamPacker":
    return self

  def __next__(self) -> np.ndarray:
    toks = self._tokens(self._batch_size * self._row)
    if toks is None:
      raise StopIteration
    self._step += 1
    return toks.reshape(self._batch_size, self._row)[self._local]

  def take(self, k: int) -> np.ndarray:
    """The next ``k`` batches as int32 [k, B_local, seq_len + 1]."""
    return np.stack([next(self) for _ in range(k)])

  next_n = take


class TfdsDataset(Dataset):
  """``Dataset`` over a prepared tfds text dataset (module docstring)."""

  def __init__(self, cfg: DataConfig, *, batch_size: int, seed: int,
               process_index: int = 0, process_count: int = 1):
    self._cfg, self._seed = cfg, seed
    self._batch_size = batch_size
    self._local = local_rows(batch_size, process_index, process_count)
    self._builder = open_builder(cfg.tfds_name, cfg.tfds_data_dir)
    splits = self._builder.info.splits
    for s in (cfg.tfds_train_split, cfg.tfds_val_split):
      if s and s not in splits:
        raise DataError(f"tfds dataset {cfg.tfds_name!r} has no split {s!r} "
                        f"(splits: {sorted(splits)})")
    n = splits[cfg.tfds_train_split].num_examples
    if cfg.tfds_val_split:
      self._n_train = n
      self._val_spec = (cfg.tfds_val_split, 0,
                        splits[cfg.tfds_val_split].num_examples)
    else:
      n_val = max(1, math.ceil(cfg.val_fraction * n))
      if n - n_val < 1:
        raise DataError(f"tfds split {cfg.tfds_train_split!r} has {n} records: "
                        "too few to hold out validation; set data.tfds_val_split")
      self._n_train = n - n_val
      self._val_spec = (cfg.tfds_train_split, n - n_val, n)
    self.tokenizer = tok_lib.build_tokenizer(cfg, self._sp_corpus())
    self._eval_cache: Dict[int, List[np.ndarray]] = {}
    info = self._builder.info
    self.metadata = {
        "source": "tfds",
        "corpus": {"name": cfg.tfds_name, "full_name": info.full_name,
                   "data_dir": cfg.tfds_data_dir,
                   "file_format": str(getattr(info.file_format, "value",
                                              info.file_format)),
                   "train_split": cfg.tfds_train_split,
                   "val_split": "%s[%d:%d]" % self._val_spec,
                   "n_train_records": self._n_train,
                   "n_val_records": self._val_spec[2] - self._val_spec[1]},
        "tokenizer": self.tokenizer.metadata(),
        "seq_len": cfg.seq_len,
        "n_train_tokens": None,    # unknown without reading the whole split
        "n_val_tokens": None,
        "batch_size": batch_size,
        "process_count": process_count,
    }
    self.eval_batches(1)  # fail early if validation cannot fill one batch

  def _reader(self, split: str, lo: int, hi: int, seed: Optional[int]):
    return _make_reader(self._builder, split, lo, hi, self._cfg.text_key, seed)

  def _sp_corpus(self) -> Optional[Corpus]:
    cfg = self._cfg
    if cfg.tokenizer != "sentencepiece" or cfg.sp_model_path:
      return None
    cap = cfg.max_corpus_bytes or SP_SAMPLE_BYTES
    key = json.dumps([self._builder.info.full_name, cfg.tfds_train_split,
                      self._n_train, cap, cfg.text_key])
    reader = self._reader(cfg.tfds_train_split, 0, self._n_train, seed=0)

    def load() -> List[str]:
      docs, total, pos = [], 0, 0
      while total < cap and pos < reader.n_records:
        for t in reader.read(0, pos, 1024):
          docs.append(t.decode("utf-8", errors="replace"))
          total += len(t)
        pos += 1024
      return docs

    return Corpus(name=f"tfds:{cfg.tfds_name}",
                  sha256=hashlib.sha256(key.encode()).hexdigest(),
                  metadata={"sample_bytes": cap}, loader=load)

  def train_iterator(self, state: Optional[Dict[str, Any]] = None
                     ) -> StreamPacker:
    reader = self._reader(self._cfg.tfds_train_split, 0, self._n_train,
                          seed=self._seed)
    packer = StreamPacker(reader, self.tokenizer, self._cfg.seq_len,
                          self._batch_size, self._local)
    if state is not None:
      packer.set_state(state)
    return packer

  def eval_batches(self, n_batches: int) -> List[np.ndarray]:
    """The first min(n_batches, available) val batches (memoised)."""
    if n_batches not in self._eval_cache:
      packer = StreamPacker(self._reader(*self._val_spec, seed=None),
                            self.tokenizer, self._cfg.seq_len,
                            self._batch_size, self._local, max_epochs=1)
      batches = [b.astype(np.int32) for _, b in zip(range(n_batches), packer)]
      if not batches:
        raise DataError("tfds validation split %s[%d:%d] is too small for one "
                        "batch; use a larger data.val_fraction or "
                        "data.tfds_val_split" % self._val_spec)
      self._eval_cache[n_batches] = batches
    return self._eval_cache[n_batches]
