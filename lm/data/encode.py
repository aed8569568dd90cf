"""Tokenizing many documents, optionally in parallel worker processes.

``encode_chunks(tokenizer, chunks, workers)`` yields, for each chunk (a list
of texts) in order, the concatenated token ids with EOS after each text and
the per-text lengths. The tokenizer runs single-threaded in each process;
with ``workers > 1`` it runs in that many ``spawn``ed processes (rebuilt there
from ``Tokenizer.spec()``; forking a process that has started JAX is unsafe),
with at most ``2 x workers`` chunks in flight so memory stays bounded; the
parent reads text and consumes results in order.
"""
from __future__ import annotations

import collections
import concurrent.futures
import multiprocessing
import os
from typing import Iterable, Iterator, List, Tuple

import numpy as np

from lm.data import tokenizers as tok_lib

MIN_BYTES_PER_WORKER = 8 << 20  # by default, smaller sources tokenize in-process


_WORKER_TOKENIZER: List[tok_lib.Tokenizer] = []


def _init_worker(spec) -> None:
  _WORKER_TOKENIZER[:] = [tok_lib.from_spec(spec)]


def _encode(tok: tok_lib.Tokenizer, texts: List[tok_lib.Text]
            ) -> Tuple[np.ndarray, np.ndarray]:
  """(tokens with EOS after each text, per-text lengths incl. EOS); one
  thread: parallelism comes from worker processes only."""
  if isinstance(tok, tok_lib.SentencePieceTokenizer):
    pieces = tok.encode_pieces(texts, num_threads=1)
  else:
    pieces = tok.encode_pieces(texts)
  stream = tok_lib._concat_with_eos(  # pylint: disable=protected-access
      pieces, tok.eos_id, tok_lib.token_dtype(tok.vocab_size))
  lengths = np.fromiter((len(p) + 1 for p in pieces), np.int64, len(pieces))
  return stream, lengths


def _encode_in_worker(texts: List[tok_lib.Text]):
  return _encode(_WORKER_TOKENIZER[0], texts)


def resolve_workers(requested: int, tokenizer: tok_lib.Tokenizer,
                    text_bytes: int) -> int:
  """Processes to tokenize with: ``requested`` if > 0; else all CPUs (1 for
  the byte tokenizer, whose encoding is a copy), at most one per
  MIN_BYTES_PER_WORKER of a source of known size (spawning costs ~1 s)."""
  if requested > 0:
    return requested
  n = 1 if isinstance(tokenizer, tok_lib.ByteTokenizer) else os.cpu_count() or 1
  if text_bytes > 0:
    n = min(n, max(1, text_bytes // MIN_BYTES_PER_WORKER))
  return max(1, n)


def encode_chunks(tokenizer: tok_lib.Tokenizer,
                  chunks: Iterable[List[tok_lib.Text]], workers: int
                  ) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
  """Encoded chunks in order; ``workers`` > 1 tokenizes in spawned processes
  with at most 2 x workers chunks in flight (bounded memory)."""
  if workers <= 1:
    for texts in chunks:
      yield _encode(tokenizer, texts)
    return
  ctx = multiprocessing.get_context("spawn")
  # ProcessPoolExecutor (not multiprocessing.Pool): a worker that cannot start
  # or dies raises BrokenProcessPool here instead of being respawned forever.
  with concurrent.futures.ProcessPoolExecutor(
      workers, mp_context=ctx, initializer=_init_worker,
      initargs=(tokenizer.spec(),)) as pool:
    pending: collections.deque = collections.deque()
    for texts in chunks:
      pending.append(pool.submit(_encode_in_worker, texts))
      if len(pending) >= 2 * workers:
        yield pending.popleft().result()
    while pending:
      yield pending.popleft().result()
