r"""Input-pipeline throughput on this CPU: what one host can feed its devices.

  python benchmarks/data_throughput.py                     # 32 MB, SentencePiece 8k
  python benchmarks/data_throughput.py --mb=8 --tokenizer=byte --T=64 --B=8

Measures, on the embedded stdlib corpus (``--mb`` MB of it, whole files):

1. Tokenization MB/s of text when building the token cache
   (``lm.data.token_cache``) with 1 and 2 worker processes (``--workers``).
2. Tokens/s delivered to the device-put boundary per host FROM THE CACHE:
   ``ArrayTrainIterator.take(K)`` over the memory-mapped training rows, i.e.
   the int32 [K, B/P, T+1] host array the trainer hands to
   ``jax.make_array_from_process_local_data`` (host 0 of ``--processes``).
   Counted as K * B/P * T target tokens per call. Goal: >= 20M tokens/s per
   host (8 x H100 on 30M-parameter models need ~11M tokens/s in all).
3. The same from the UNCACHED path: ``lm.data.stream_packer.StreamPacker``
   tokenizing records on the training thread (what tfds did before the cache),
   over one pass of the corpus from a fresh packer.

No JAX is imported: the figures are host-side. Wall-clock numbers on a shared
machine are noisy (and with the kernel's autogroup scheduling, extra worker
processes in one session do not get extra CPU on a busy machine); MB per
CPU-second shows whether workers add overhead. Run it alone for citable
figures.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time

from lm.config import DataConfig
from lm import safe_io
from lm.data import dataset
from lm.data import pipeline
from lm.data import sources
from lm.data import token_cache
from lm.data import tokenizers as tok_lib
from lm.data.stream_packer import StreamPacker

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GOAL_TOKENS_PER_S = 20e6


def parse(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--mb", type=float, default=32.0,
                 help="MB of the stdlib corpus to tokenize (0 = all of it)")
  p.add_argument("--tokenizer", default="sentencepiece",
                 choices=["sentencepiece", "byte"])
  p.add_argument("--sp_vocab", type=int, default=8192)
  p.add_argument("--sp_train_mb", type=float, default=4.0,
                 help="MB of the corpus SentencePiece trains on (not timed)")
  p.add_argument("--workers", default="1,2",
                 help="comma-separated worker counts for the cache build")
  p.add_argument("--T", type=int, default=1024)
  p.add_argument("--B", type=int, default=64, help="global batch (sequences)")
  p.add_argument("--processes", type=int, default=1,
                 help="hosts sharing the batch; host 0 is measured")
  p.add_argument("--steps_per_call", type=int, default=10, help="K")
  p.add_argument("--calls", type=int, default=200, help="timed take(K) calls")
  p.add_argument("--json", default="", help="also write the figures here")
  return p.parse_args(argv)


def _timed(fn, calls: int) -> float:
  fn()                                   # warm-up (page cache, permutations)
  t0 = time.perf_counter()
  for _ in range(calls):
    fn()
  return time.perf_counter() - t0


def _cpu_seconds() -> float:
  """User + system CPU of this process and its finished children."""
  import resource
  return sum(r.ru_utime + r.ru_stime for r in (
      resource.getrusage(resource.RUSAGE_SELF),
      resource.getrusage(resource.RUSAGE_CHILDREN)))


class _DocReader:
  """Stream-packer reader over in-memory documents, shuffled per epoch."""

  def __init__(self, docs, seed=0):
    import numpy as np
    self._docs = [d.encode("utf-8") for d in docs]
    self.n_records = len(self._docs)
    self._rng_seed = seed
    self._np = np

  def read(self, epoch, start, count):
    order = self._np.random.default_rng([self._rng_seed, epoch]).permutation(
        self.n_records)
    return [self._docs[i] for i in order[start:start + count]]


def _corpus_and_tokenizer(args, tmp: str, out: dict):
  """(sources, tokenizer) for the run; SentencePiece trains on its own
  ``--sp_train_mb`` slice (timed apart, not part of the figures)."""
  cfg = DataConfig(source="default", tokenizer=args.tokenizer,
                   sp_vocab_size=args.sp_vocab, seq_len=args.T,
                   max_corpus_bytes=int(args.mb * 1e6), cache_dir=tmp)
  src = sources.sources_for(cfg)
  t0 = time.perf_counter()
  sp_cfg = dataclasses.replace(cfg, max_corpus_bytes=int(args.sp_train_mb
                                                         * 1e6))
  tok = tok_lib.build_tokenizer(cfg, sources.sources_for(sp_cfg).sp_corpus)
  out["tokenizer"] = tok.metadata()["type"]
  out["tokenizer_train_s"] = time.perf_counter() - t0
  corpus_md = src.metadata["corpus"]
  print(f"corpus: stdlib, {corpus_md['n_bytes'] / 1e6:.1f} MB, "
        f"{corpus_md['n_files']} files; tokenizer {out['tokenizer']} "
        f"(vocab {tok.vocab_size}; trained on {args.sp_train_mb:g} MB in "
        f"{out['tokenizer_train_s']:.1f} s, not timed below)")
  return src, tok


def _cache_build(args, src, tok, tmp: str, out: dict) -> str:
  """1. Tokenization MB/s building the cache, per worker count; returns the
  last cache's directory."""
  out["tokenize_mb_per_s"] = {}
  out["tokenize_mb_per_cpu_s"] = {}
  for w in (int(x) for x in args.workers.split(",")):
    token_cache.clear_memo()
    cache_dir = os.path.join(tmp, f"w{w}")
    cpu0 = _cpu_seconds()
    stream = token_cache.load_or_build(src.train, tok, cache_dir=cache_dir,
                                       workers=w)
    cpu = _cpu_seconds() - cpu0
    build, mb = stream.manifest["build"], stream.manifest["text_bytes"] / 1e6
    mb_s = mb / max(build["seconds"], 1e-9)
    out["tokenize_mb_per_s"][w] = mb_s
    out["tokenize_mb_per_cpu_s"][w] = mb / max(cpu, 1e-9)
    print(f"tokenize into the cache, {w} worker(s): {mb_s:,.2f} MB/s "
          f"({mb:.1f} MB in {build['seconds']:.2f} s wall, {cpu:.2f} CPU-s "
          f"incl. worker start-up: {mb / max(cpu, 1e-9):,.2f} MB per "
          f"CPU-s; {stream.manifest['n_tokens']:,} tokens)")
  return cache_dir


def _from_cache(args, src, tok, cache_dir: str, out: dict):
  """2. From the cache: open (verifies sha256) + take(K) per host. Returns
  (the cache's stream, tokens/s), or None when the corpus is too small."""
  token_cache.clear_memo()
  t0 = time.perf_counter()
  stream = token_cache.load_or_build(src.train, tok, cache_dir=cache_dir)
  out["cache_open_s"] = time.perf_counter() - t0
  rows = pipeline.pack(stream.tokens, args.T)
  B, K, P = args.B, args.steps_per_call, args.processes
  if len(rows) < B:
    print(f"error: {len(rows)} rows of T+1={args.T + 1} < B={B}; "
          "use a larger --mb or smaller --T/--B", file=sys.stderr)
    return None
  it = pipeline.ArrayTrainIterator(rows, B, seed=0, process_index=0,
                                   process_count=P)
  dt = _timed(lambda: it.take(K), args.calls)
  tok_s = args.calls * K * (B // P) * args.T / dt
  out["cache_tokens_per_s_per_host"] = tok_s
  verdict = "meets" if tok_s >= GOAL_TOKENS_PER_S else "BELOW"
  print(f"from the cache -> device_put boundary: {tok_s:,.0f} tokens/s per "
        f"host (B={B}, P={P}, T={args.T}, K={K}; open + sha256 check "
        f"{out['cache_open_s']:.2f} s) -- {verdict} the 20M tokens/s goal")
  return stream, tok_s


def _uncached(args, src, tok, n_tokens: int, cached_tok_s: float,
              out: dict) -> None:
  """3. Uncached: the stream packer tokenizing on the training thread, timed
  from a fresh packer over one pass of the corpus (it reads ahead, so a
  warm-up call would tokenize much of a small corpus untimed)."""
  B, K, P = args.B, args.steps_per_call, args.processes
  docs = src.sp_corpus.documents()
  packer = StreamPacker(_DocReader(docs), tok, args.T, B,
                        dataset.local_rows(B, 0, P))
  calls = max(1, n_tokens // (K * B * (args.T + 1)))
  t0 = time.perf_counter()
  for _ in range(calls):
    packer.take(K)
  tok_s_unc = calls * K * (B // P) * args.T / (time.perf_counter() - t0)
  out["uncached_tokens_per_s_per_host"] = tok_s_unc
  ratio = cached_tok_s / tok_s_unc
  print(f"uncached stream packer -> device_put boundary: {tok_s_unc:,.0f} "
        f"tokens/s per host (the cache delivers {ratio:,.1f}x as much)")


def main(argv=None) -> int:
  args = parse(argv)
  out = {}
  with tempfile.TemporaryDirectory() as tmp:
    src, tok = _corpus_and_tokenizer(args, tmp, out)
    cache_dir = _cache_build(args, src, tok, tmp, out)
    cached = _from_cache(args, src, tok, cache_dir, out)
    if cached is None:
      return 2
    stream, tok_s = cached
    _uncached(args, src, tok, stream.manifest["n_tokens"], tok_s, out)
  out["args"] = vars(args)
  if args.json:
    safe_io.atomic_write_json(args.json, out, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
