"""The uncached input path: records tokenized on the training thread.

``StreamPacker`` reads records from a reader (``n_records`` and
``read(epoch, start, count) -> list[bytes]``, e.g. ``tfds_source``'s), tokenizes
each one followed by EOS, and packs one stream that continues across epochs
into global batches: every global batch is the next ``B * (seq_len + 1)``
tokens, reshaped to [B, seq_len + 1]. Every process reads the same global
stream and keeps rows [p*B/P, (p+1)*B/P), so the iterator state is identical
on all processes: ``{"step", "epoch", "pos", "offset"}`` = the next token is
token ``offset`` of record ``pos`` of ``epoch``. The token cache
(``token_cache``) replaces this path by default; ``benchmarks/data_throughput.py``
compares the two.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from lm.data import tokenizers as tok_lib
from lm.data.corpus import DataError


def _encode(tokenizer: tok_lib.Tokenizer, texts: List[bytes]) -> List[np.ndarray]:
  """Each record's tokens followed by EOS."""
  eos = np.array([tokenizer.eos_id], np.int32)
  return [np.concatenate([x.astype(np.int32), eos])
          for x in tokenizer.encode_pieces(texts)]


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
