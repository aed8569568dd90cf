"""Text from a prepared TFDS dataset (lm1b, c4, ...).

Split: the dataset's ``validation`` split when it has one (or
``data.tfds_val_split``); otherwise records of the train split are held out by
an index hash (``lm.data.split.record_split``). ``data.tfds_max_records``
caps each split to its first records (tfds shuffles records when it prepares
a dataset, so a prefix is a random sample).

Records: array_record datasets are read with ``builder.as_data_source``
(random access, no TensorFlow); tfrecord datasets need TensorFlow and are
read sequentially with ``builder.as_dataset``.

Default path (``data.token_cache=True``): each side is tokenized once into the
token cache (``lm.data.token_cache``; records in index order, each followed by
EOS), packed into rows and shuffled by row (``lm.data.pipeline``).

Uncached path (``data.token_cache=False``, array_record only): training
records are shuffled per epoch with grain's lazy index shuffle
(``grain.MapDataset.range(n).shuffle(seed)``, one seed per ``(seed, epoch)``)
and tokenized on the training thread by ``StreamPacker``: every global batch
is the next ``B * (seq_len + 1)`` tokens of one stream that continues across
epochs; every process reads the same global stream and keeps rows
[p*B/P, (p+1)*B/P), and the state is ``{"step", "epoch", "pos", "offset"}``.
Validation is tokenized in memory.

SentencePiece on tfds trains on the first training records in a fixed (seed
0) shuffled order, up to ``max_corpus_bytes`` (64 MB if 0).
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Dict, Iterator, List, Optional

import numpy as np

from lm.config import DataConfig
from lm.data import eval_set as eval_lib
from lm.data import split as split_lib
from lm.data import tokenizers as tok_lib
from lm.data.corpus import Corpus, DataError
from lm.data.dataset import Dataset, local_rows
from lm.data.sources import Sources
from lm.data.stream_packer import StreamPacker
from lm.data.token_cache import DocSource, TokenStream

SP_SAMPLE_BYTES = 64 << 20
AUTO_VAL_SPLIT = "validation"
_READ_BLOCK = 1024


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


class Records:
  """Record indices of one side of a split, never materialised in full.

  ``include``: exactly these (sorted) indices; ``exclude``: every index in
  [0, n) except these (sorted); neither: all of [0, n).
  """

  def __init__(self, n: int, include: Optional[np.ndarray] = None,
               exclude: Optional[np.ndarray] = None):
    self._n, self._include, self._exclude = n, include, exclude
    if exclude is not None:
      self._gaps = exclude - np.arange(len(exclude))

  def __len__(self) -> int:
    if self._include is not None:
      return len(self._include)
    return self._n - (0 if self._exclude is None else len(self._exclude))

  @property
  def stop(self) -> int:
    """One past the largest index."""
    return int(self._include[-1]) + 1 if self._include is not None else self._n

  def at(self, positions: np.ndarray) -> np.ndarray:
    """The record indices at ``positions`` (0 <= p < len) of this side."""
    p = np.asarray(positions, np.int64)
    if self._include is not None:
      return self._include[p]
    if self._exclude is None:
      return p
    # The p-th index not in ``exclude``: p + #{exclude[j] - j <= p}.
    return p + np.searchsorted(self._gaps, p, side="right")

  def mask(self) -> np.ndarray:
    """bool [stop]: which indices below ``stop`` belong to this side."""
    m = np.zeros(self.stop, bool)
    m[self.at(np.arange(len(self)))] = True
    return m


class _ArrayRecordReader:
  """Random-access reads of a split's ``Records``, optionally shuffled per epoch."""

  def __init__(self, builder, split: str, records: Records, text_key: str,
               seed: Optional[int]):
    self._src = builder.as_data_source(split=split)
    self._records, self.n_records = records, len(records)
    self._key, self._seed = text_key, seed
    self._order = {}

  def _positions(self, epoch: int, start: int, count: int) -> np.ndarray:
    pos = np.arange(start, min(start + count, self.n_records))
    if self._seed is None:
      return pos
    if epoch not in self._order:
      self._order = {epoch: _grain().MapDataset.range(self.n_records).shuffle(
          seed=_epoch_seed(self._seed, epoch))}
    order = self._order[epoch]
    return np.array([int(order[int(p)]) for p in pos], np.int64)

  def read(self, epoch: int, start: int, count: int) -> List[bytes]:
    idx = [int(i) for i in self._records.at(self._positions(epoch, start,
                                                            count))]
    getitems = getattr(self._src, "__getitems__", None)
    recs = getitems(idx) if getitems else [self._src[i] for i in idx]
    return [_text(r, self._key) for r in recs]


class _TfRecordReader:
  """Sequential, in-order reads of a split's ``Records`` (needs TensorFlow)."""

  def __init__(self, builder, split: str, records: Records, text_key: str,
               seed: Optional[int]):
    if seed is not None:
      raise DataError("data.token_cache=False needs an array_record dataset; "
                      "re-prepare it with `tfds build ... "
                      "--file_format=array_record` or use the token cache")
    self._builder, self._split = builder, f"{split}[:{records.stop}]"
    self._mask, self.n_records, self._key = records.mask(), len(records), text_key
    self._it, self._at = None, None

  def read(self, epoch: int, start: int, count: int) -> List[bytes]:
    del epoch
    tfds = _tfds()
    if self._at != start:
      ds = self._builder.as_dataset(split=self._split, shuffle_files=False)
      self._it = (r for i, r in enumerate(tfds.as_numpy(ds)) if self._mask[i])
      for _ in range(start):
        next(self._it)
    out = []
    for _ in range(min(count, self.n_records - start)):
      out.append(_text(next(self._it), self._key))
    self._at = start + len(out)
    return out


def _text(record: Any, key: str) -> bytes:
  if not isinstance(record, dict) or key not in record:
    keys = sorted(record) if isinstance(record, dict) else type(record).__name__
    raise DataError(f"tfds records have no field data.text_key={key!r} "
                    f"(fields: {keys})")
  value = record[key]
  return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _file_format(builder) -> str:
  fmt = builder.info.file_format
  return str(getattr(fmt, "value", fmt))


def _make_reader(builder, split: str, records: Records, text_key: str,
                 seed: Optional[int]):
  fmt = _file_format(builder)
  if fmt == "array_record":
    return _ArrayRecordReader(builder, split, records, text_key, seed)
  try:
    import tensorflow  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    raise DataError(
        f"tfds dataset {builder.name!r} is stored as {fmt}, which needs "
        "TensorFlow: pip install tensorflow, or re-prepare it with "
        "`tfds build ... --file_format=array_record`") from None
  return _TfRecordReader(builder, split, records, text_key, seed)


class TfdsRecords(DocSource):
  """One side of a tfds split as a token-cache source (records in order)."""

  def __init__(self, builder, split: str, records: Records, text_key: str,
               selection: Dict[str, Any], data_dir: str = ""):
    self.builder, self.split, self.records = builder, split, records
    self.text_key, self.n_documents = text_key, len(records)
    self.name = f"tfds_{builder.name}-{split}-{selection['side']}"
    self._descriptor = {"kind": "tfds", "full_name": builder.info.full_name,
                        "split": split, "text_key": text_key,
                        "n_records": len(records), **selection}
    self.data_dir = data_dir

  def descriptor(self) -> Dict[str, Any]:
    return self._descriptor

  def reader(self, seed: Optional[int] = None):
    return _make_reader(self.builder, self.split, self.records, self.text_key,
                        seed)

  def chunks(self, chunk_bytes: int) -> Iterator[List[bytes]]:
    reader, pos, out, size = self.reader(), 0, [], 0
    while pos < self.n_documents:
      texts = reader.read(0, pos, _READ_BLOCK)
      pos += len(texts)
      for t in texts:
        out.append(t)
        size += len(t)
        if size >= chunk_bytes:
          yield out
          out, size = [], 0
    if out:
      yield out


def _sp_corpus(cfg: DataConfig, train: TfdsRecords) -> Optional[Corpus]:
  if cfg.tokenizer != "sentencepiece" or cfg.sp_model_path:
    return None
  cap = cfg.max_corpus_bytes or SP_SAMPLE_BYTES
  key = json.dumps([train.descriptor(), cap], sort_keys=True)
  reader = train.reader(seed=0)

  def load() -> List[str]:
    docs, total, pos = [], 0, 0
    while total < cap and pos < reader.n_records:
      for t in reader.read(0, pos, _READ_BLOCK):
        docs.append(t.decode("utf-8", errors="replace"))
        total += len(t)
      pos += _READ_BLOCK
    return docs

  return Corpus(name=f"tfds:{cfg.tfds_name}",
                sha256=hashlib.sha256(key.encode()).hexdigest(),
                metadata={"sample_bytes": cap}, loader=load)


def sources_for(cfg: DataConfig) -> Sources:
  """The train/val ``TfdsRecords`` of ``cfg`` (module docstring)."""
  builder = open_builder(cfg.tfds_name, cfg.tfds_data_dir)
  splits = builder.info.splits
  val_split = cfg.tfds_val_split or (AUTO_VAL_SPLIT if AUTO_VAL_SPLIT in splits
                                     else "")
  for s in (cfg.tfds_train_split, val_split):
    if s and s not in splits:
      raise DataError(f"tfds dataset {cfg.tfds_name!r} has no split {s!r} "
                      f"(splits: {sorted(splits)})")

  def capped(split: str) -> int:
    n = splits[split].num_examples
    return min(n, cfg.tfds_max_records) if cfg.tfds_max_records else n

  n_train = capped(cfg.tfds_train_split)
  if val_split:
    n_val = capped(val_split)
    rule = f"tfds split {val_split!r}" + (
        " (auto-detected)" if not cfg.tfds_val_split else "")
    sides = {"train": (cfg.tfds_train_split, Records(n_train)),
             "val": (val_split, Records(n_val))}
    sha = hashlib.sha256(json.dumps([builder.info.full_name,
                                     cfg.tfds_train_split, n_train, val_split,
                                     n_val]).encode()).hexdigest()
    split_md = {"rule": rule, "val_fraction": None,
                "n_train_documents": n_train, "n_val_documents": n_val,
                "split_sha256": sha}
  else:
    rs = split_lib.record_split(n_train, cfg.val_fraction)
    sides = {"train": (cfg.tfds_train_split, Records(n_train, exclude=rs.val)),
             "val": (cfg.tfds_train_split, Records(n_train, include=rs.val))}
    split_md, sha, rule = rs.metadata(), rs.sha256, rs.rule
  src = {side: TfdsRecords(builder, name, recs, cfg.text_key,
                           {"side": side, "split_rule": rule,
                            "split_sha256": sha,
                            "max_records": cfg.tfds_max_records},
                           cfg.tfds_data_dir)
         for side, (name, recs) in sides.items()}
  corpus_md = {"name": cfg.tfds_name, "full_name": builder.info.full_name,
               "data_dir": cfg.tfds_data_dir,
               "file_format": _file_format(builder),
               "train_split": cfg.tfds_train_split,
               "val_split": val_split or f"{cfg.tfds_train_split} (held out)",
               "n_train_records": len(sides["train"][1]),
               "n_val_records": len(sides["val"][1]),
               "max_records": cfg.tfds_max_records}
  return Sources(train=src["train"], val=src["val"],
                 sp_corpus=_sp_corpus(cfg, src["train"]),
                 metadata={"corpus": corpus_md, "split": split_md})


class StreamingTfdsDataset(Dataset):
  """tfds without the token cache: the stream packer (module docstring)."""

  def __init__(self, cfg: DataConfig, sources: Sources,
               tokenizer: tok_lib.Tokenizer, val: TokenStream, *,
               batch_size: int, seed: int, process_index: int = 0,
               process_count: int = 1,
               metadata: Optional[Dict[str, Any]] = None):
    self._cfg, self._train, self._val = cfg, sources.train, val
    self._batch_size, self._seed = batch_size, seed
    self._local = local_rows(batch_size, process_index, process_count)
    self.tokenizer = tokenizer
    self._eval_sets: Dict[int, eval_lib.EvalSet] = {}
    self.metadata = dict(metadata or {})
    self.metadata.update({
        "tokenizer": tokenizer.metadata(), "seq_len": cfg.seq_len,
        "val": val.metadata(), "unique_train_tokens": None,
        "batch_size": batch_size, "process_count": process_count})
    if len(val.tokens) < cfg.seq_len + 1:
      raise DataError("tfds validation split is too small for one row; use a "
                      "larger data.val_fraction or data.tfds_val_split")

  def train_iterator(self, state: Optional[Dict[str, Any]] = None
                     ) -> StreamPacker:
    packer = StreamPacker(self._train.reader(seed=self._seed), self.tokenizer,
                          self._cfg.seq_len, self._batch_size, self._local)
    if state is not None:
      packer.set_state(state)
    return packer

  def eval_set(self, n_tokens: int) -> eval_lib.EvalSet:
    if n_tokens not in self._eval_sets:
      self._eval_sets[n_tokens] = eval_lib.make_eval_set(
          self._val.tokens, self._val.doc_offsets, self._cfg.seq_len, n_tokens)
    return self._eval_sets[n_tokens]
