"""Validation splits that hold out whole documents, deterministically.

In-memory corpora (``default``, ``files``): documents are ranked by
``sha256("scalinglm-val-v1\\0" + key)`` (key: the path relative to the corpus
root) and the lowest-ranked ones, taken until they hold at least
``val_fraction`` of the corpus bytes, are the validation split; the rest is
training. So training and validation share no document, the choice depends on
the document keys and sizes only (not on the tokenizer, sequence length, batch
size, seed or process count), and the salted rank is independent of the corpus
order, so a ``max_corpus_bytes`` cap does not bias which documents are held
out. The SentencePiece trainer sees only the training documents.

tfds datasets without their own validation split: record ``i`` of the train
split is held out iff ``splitmix64(i ^ salt) / 2^64 < val_fraction`` (Steele
et al. 2014's SplitMix64 finaliser as a uniform hash of the index), so no
record is read to decide and the held-out records are spread over the split.

``Split.sha256`` identifies the split (the ids on each side); the token
streams of both sides carry their own sha256 in the token-cache manifest.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
from typing import Sequence

import numpy as np

from lm.data.corpus import DataError

DOC_SALT = "scalinglm-val-v1"
_RECORD_SALT = np.uint64(0x5CA1AB1E0DDBA11)

DOC_RULE = ("documents ranked by sha256('scalinglm-val-v1\\0' + key); the "
            "lowest-ranked holding >= val_fraction of the corpus bytes are "
            "validation")
RECORD_RULE = ("train record i is validation iff splitmix64(i ^ 0x5ca1ab1e0ddba11)"
               " / 2^64 < val_fraction")


@dataclasses.dataclass(frozen=True)
class Split:
  """Which documents (or records) are training and which are validation.

  Attributes:
    train: int64 indices of the training documents, ascending (corpus order).
    val: int64 indices of the validation documents, ascending.
    rule: how the split was made, in words (recorded in run.json).
    val_fraction: the configured fraction.
    sha256: hex digest over the ids of both sides.
  """
  train: np.ndarray
  val: np.ndarray
  rule: str
  val_fraction: float
  sha256: str

  def metadata(self) -> dict:
    return {"rule": self.rule, "val_fraction": self.val_fraction,
            "n_train_documents": int(len(self.train)),
            "n_val_documents": int(len(self.val)), "split_sha256": self.sha256}


def _rank_key(key: str) -> str:
  return hashlib.sha256(f"{DOC_SALT}\0{key}".encode("utf-8")).hexdigest()


def document_split(keys: Sequence[str], sizes: Sequence[int],
                   val_fraction: float) -> Split:
  """The validation documents of an in-memory corpus (module docstring)."""
  if len(keys) != len(sizes) or not keys:
    raise DataError("cannot split an empty corpus into train and validation")
  if not 0.0 < val_fraction < 1.0:
    raise DataError(f"data.val_fraction must be in (0, 1), got {val_fraction}")
  order = sorted(range(len(keys)), key=lambda i: (_rank_key(keys[i]), keys[i]))
  budget = val_fraction * float(sum(sizes))
  val, held = [], 0
  for i in order:
    if held >= budget:
      break
    val.append(i)
    held += sizes[i]
  val_idx = np.array(sorted(val), np.int64)
  train_idx = np.setdiff1d(np.arange(len(keys), dtype=np.int64), val_idx)
  if not len(train_idx):
    raise DataError(f"corpus too small: its {len(keys)} document(s) all go to "
                    f"validation at data.val_fraction={val_fraction}; add "
                    "documents or lower data.val_fraction")
  h = hashlib.sha256()
  for name, idx in (("val", val_idx), ("train", train_idx)):
    h.update(name.encode() + b"\0")
    for i in idx:
      h.update(keys[int(i)].encode("utf-8") + b"\0")
  return Split(train=train_idx, val=val_idx, rule=DOC_RULE,
               val_fraction=float(val_fraction), sha256=h.hexdigest())


def _splitmix64(x: np.ndarray) -> np.ndarray:
  """SplitMix64 finaliser (Steele, Lea & Flood 2014), vectorised over uint64."""
  with np.errstate(over="ignore"):
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
  return z ^ (z >> np.uint64(31))


@dataclasses.dataclass(frozen=True)
class RecordSplit:
  """Held-out records of a tfds train split of ``n_records`` records.

  Attributes:
    n_records: records in the (capped) train split.
    val: int64 indices of the validation records, ascending; training is
      every other record (never materialised: c4 has 365M records).
    rule, val_fraction, sha256: as in ``Split``.
  """
  n_records: int
  val: np.ndarray
  rule: str
  val_fraction: float
  sha256: str

  def metadata(self) -> dict:
    return {"rule": self.rule, "val_fraction": self.val_fraction,
            "n_train_documents": int(self.n_records - len(self.val)),
            "n_val_documents": int(len(self.val)), "split_sha256": self.sha256}


_BLOCK = 1 << 24


@functools.lru_cache(maxsize=8)
def record_split(n_records: int, val_fraction: float) -> RecordSplit:
  """Held-out records of a tfds train split without a validation split."""
  if n_records <= 0:
    raise DataError("tfds split has no records")
  val = []
  for lo in range(0, n_records, _BLOCK):
    idx = np.arange(lo, min(n_records, lo + _BLOCK), dtype=np.uint64)
    u = (_splitmix64(idx ^ _RECORD_SALT) >> np.uint64(11)).astype(np.float64)
    val.append(idx[u * 2.0**-53 < val_fraction].astype(np.int64))
  val_idx = np.concatenate(val)
  val_idx.setflags(write=False)
  if not len(val_idx) or len(val_idx) == n_records:
    side = "validation" if not len(val_idx) else "training"
    raise DataError(
        f"tfds train split has {n_records} records, which leaves no {side} "
        f"records at data.val_fraction={val_fraction}; set "
        "data.tfds_val_split or change data.val_fraction")
  h = hashlib.sha256(f"records:{n_records}:".encode())
  h.update(val_idx.astype("<i8").tobytes())
  return RecordSplit(n_records=n_records, val=val_idx, rule=RECORD_RULE,
                     val_fraction=float(val_fraction), sha256=h.hexdigest())
