"""The fixed eval set: the same validation rows for every run of a sweep.

The validation split's token stream (``lm.data.split``) is packed into
non-overlapping rows of ``seq_len + 1`` tokens, like training. For
``eval_tokens`` target tokens, ``n = ceil(eval_tokens / seq_len)`` rows are
taken, spread evenly over the whole split: row ``floor((k + 1/2) n_val / n)``
for ``k = 0..n-1``. The selection depends only on the data config (corpus,
split, tokenizer, seq_len) and ``eval_tokens``, never on the batch size, seed
or process count, so every run with the same data config scores the same
token ids; ``EvalSet.sha256`` identifies them.

Each row also carries the index of the validation document holding its first
target token, for the per-document standard error (``lm.evaluate``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Any, Dict

import numpy as np

from lm.data.corpus import DataError

RULE = ("n = ceil(eval_tokens / seq_len) rows of seq_len + 1 tokens, row "
        "floor((k + 1/2) n_val / n) of the packed validation split, k < n")
_SHA_TAG = b"scalinglm-eval-v1"


@dataclasses.dataclass(frozen=True)
class EvalSet:
  """The rows every run scores.

  Attributes:
    rows: int32 [n, seq_len + 1]; inputs row[:-1], targets row[1:].
    doc_index: int64 [n]; validation-document index of each row's first
      target token (the cluster of the per-document standard error).
    sha256: hex digest of the token ids (shape + little-endian int32 rows).
    n_tokens: target tokens scored, n * seq_len.
    rule: how the rows were selected, in words.
  """
  rows: np.ndarray
  doc_index: np.ndarray
  sha256: str
  n_tokens: int
  rule: str

  @property
  def n_rows(self) -> int:
    return int(self.rows.shape[0])

  @property
  def n_documents(self) -> int:
    return int(len(np.unique(self.doc_index)))

  def metadata(self) -> Dict[str, Any]:
    return {"rule": self.rule, "sha256": self.sha256, "n_rows": self.n_rows,
            "n_tokens": self.n_tokens, "n_documents": self.n_documents}


def rows_sha256(rows: np.ndarray) -> str:
  h = hashlib.sha256(_SHA_TAG)
  h.update(np.asarray(rows.shape, "<i8").tobytes())
  h.update(np.ascontiguousarray(rows, "<i4").tobytes())
  return h.hexdigest()


def spread_indices(n_available: int, n: int) -> np.ndarray:
  """floor((k + 1/2) n_available / n), k < n: n distinct, evenly spread rows."""
  k = np.arange(n, dtype=np.int64)
  return (2 * k + 1) * n_available // (2 * n)


def make_eval_set(val_tokens: np.ndarray, doc_offsets: np.ndarray,
                  seq_len: int, eval_tokens: int) -> EvalSet:
  """The eval set of ``eval_tokens`` target tokens (module docstring)."""
  if not isinstance(eval_tokens, (int, np.integer)) or eval_tokens <= 0:
    raise DataError(f"train.eval_tokens must be a positive integer, got "
                    f"{eval_tokens!r}")
  row = seq_len + 1
  n_val = len(val_tokens) // row
  n = math.ceil(eval_tokens / seq_len)
  if n > n_val:
    raise DataError(
        f"train.eval_tokens={eval_tokens} needs {n} rows of seq_len+1={row} "
        f"tokens, but the validation split holds {n_val} rows "
        f"({n_val * seq_len} target tokens); raise data.val_fraction or use "
        "more data, or lower train.eval_tokens")
  idx = spread_indices(n_val, n)
  packed = np.asarray(val_tokens[:n_val * row]).reshape(n_val, row)
  rows = packed[idx].astype(np.int32)
  first_target = idx * row + 1
  doc_index = np.searchsorted(np.asarray(doc_offsets), first_target,
                              side="right") - 1
  return EvalSet(rows=rows, doc_index=doc_index.astype(np.int64),
                 sha256=rows_sha256(rows), n_tokens=int(n * seq_len),
                 rule=RULE)
