"""What the trainer consumes (``Dataset``) and this process's rows of a batch.

Shared by the in-memory pipeline (``lm.data.pipeline``) and the streaming
sources (``lm.data.tfds_source``); imports neither.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from lm.data import eval_set as eval_lib
from lm.data import tokenizers as tok_lib
from lm.data.corpus import DataError


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



class Dataset:
  """What the trainer consumes; see ``build_dataset``.

  Attributes:
    tokenizer: the tokenizer every split was encoded with.
    metadata: JSON-friendly description (run.json ``data``).
    unique_train_tokens: target tokens in the training rows (None: unknown).
  """
  tokenizer: tok_lib.Tokenizer
  metadata: Dict[str, Any]
  unique_train_tokens: Optional[int] = None

  @property
  def vocab_size(self) -> int:
    return self.tokenizer.vocab_size

  def train_iterator(self, state: Optional[Dict[str, Any]] = None):
    raise NotImplementedError

  def eval_set(self, n_tokens: int) -> eval_lib.EvalSet:
    raise NotImplementedError
