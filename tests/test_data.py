"""Data pipeline properties: corpora, packing, splits, resumable iterators."""
import json
import os
import sysconfig
import time

import numpy as np
import pytest

from lm.config import ConfigError, DataConfig
from lm.data import corpus as corpus_lib
from lm.data import pipeline
from lm.data import tokenizers as tok_lib
from lm.data.corpus import DataError


def _stream(n, seed=0, vocab=257):
  return np.random.default_rng(seed).integers(0, vocab, n).astype(np.uint16)


def _dataset(n_tokens=20_000, seq_len=15, batch_size=8, seed=0, p=0, P=1,
             val_fraction=0.05):
  return pipeline.ArrayDataset(_stream(n_tokens), tok_lib.ByteTokenizer(),
                               seq_len, val_fraction, batch_size=batch_size,
                               seed=seed, process_index=p, process_count=P)


# ------------------------------------------------------------------ corpora


@pytest.fixture(scope="module")
def cache_dirs(tmp_path_factory):
  return str(tmp_path_factory.mktemp("a")), str(tmp_path_factory.mktemp("b"))


def test_default_corpus_is_the_stdlib_and_deterministic(cache_dirs):
  corpus_lib.clear_memo()
  a = corpus_lib.stdlib_corpus(cache_dir=cache_dirs[0])
  corpus_lib.clear_memo()
  b = corpus_lib.stdlib_corpus(cache_dir=cache_dirs[1])  # re-reads all files
  assert a.sha256 == b.sha256 and len(a.sha256) == 64
  assert a.metadata["n_bytes"] > 1_000_000
  for key in ("python_version", "n_files", "n_bytes", "sha256"):
    assert key in a.metadata
  # Independent count: every .py under the stdlib outside site-packages.
  root = sysconfig.get_paths()["stdlib"]
  n, size = 0, 0
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames[:] = [d for d in dirnames if d not in
                   ("site-packages", "dist-packages", "__pycache__")
                   and not d.startswith(".")]
    for f in filenames:
      if f.endswith(".py"):
        n += 1
        size += os.path.getsize(os.path.join(dirpath, f))
  assert a.metadata["n_files"] == n == len(b.documents())
  assert a.metadata["n_bytes"] == size


def test_default_corpus_cap_takes_whole_files(cache_dirs):
  full = corpus_lib.stdlib_corpus(cache_dir=cache_dirs[0])
  cap = 300_000
  small = corpus_lib.stdlib_corpus(max_bytes=cap, cache_dir=cache_dirs[0])
  assert small.sha256 != full.sha256
  assert 0 < small.metadata["n_bytes"] <= cap
  k = small.metadata["n_files"]
  sizes = [len(d.encode("utf-8", errors="replace")) for d in full.documents()]
  # The capped corpus is a prefix of the full corpus order...
  assert small.documents() == full.documents()[:k]
  # ...and the next file would not have fit (approximately: decoded sizes).
  assert sum(sizes[:k + 1]) > cap


def test_dataset_memo_makes_second_build_fast(cache_dirs):
  cfg = DataConfig(seq_len=64, cache_dir=cache_dirs[1])
  pipeline.build_dataset(cfg, batch_size=8, seed=0)
  t0 = time.perf_counter()
  ds = pipeline.build_dataset(cfg, batch_size=8, seed=1)
  assert time.perf_counter() - t0 < 0.1
  md = ds.metadata
  assert md["corpus"]["sha256"] and md["tokenizer"]["type"] == "byte"
  assert md["n_train_tokens"] + md["n_val_tokens"] <= md["n_tokens"]
  assert md["n_train_tokens"] > 1_000_000
  json.dumps(md)
  # A fresh process would hit the disk cache: it exists and holds the stream.
  files = os.listdir(cache_dirs[1])
  tok_files = [f for f in files if f.startswith("tokens-")]
  assert len(tok_files) == 1
  on_disk = np.load(os.path.join(cache_dirs[1], tok_files[0]))
  np.testing.assert_array_equal(on_disk[:len(ds.rows.ravel())], ds.rows.ravel())


def test_files_source_walks_dirs_and_round_trips(tmp_path):
  root = tmp_path / "txt"
  (root / "sub").mkdir(parents=True)
  texts = {"a.txt": "hello wörld\n" * 50, "sub/b.md": "# title\n" * 80,
           "sub/c.py": "x = 1\n" * 70}
  for rel, text in texts.items():
    (root / rel).write_text(text, encoding="utf-8")
  (root / ".hidden.txt").write_text("secret")
  (root / "blob.bin").write_bytes(b"\0\1\2" * 100)
  extra = tmp_path / "extra.txt"
  extra.write_text("extra file " * 30)
  corpus = corpus_lib.files_corpus(f"{root},{extra}", cache_dir=str(tmp_path))
  docs = corpus.documents()
  assert sorted(docs) == sorted(list(texts.values()) + [extra.read_text()])
  tok = tok_lib.ByteTokenizer()
  stream = pipeline.corpus_tokens(corpus, tok, str(tmp_path))
  cuts = np.flatnonzero(stream == tok.eos_id)
  assert len(cuts) == len(docs)
  pieces = np.split(stream, cuts + 1)[:-1]
  assert [tok.decode(p[:-1]) for p in pieces] == docs


def test_files_source_errors_are_one_line(tmp_path):
  (tmp_path / "empty").mkdir()
  (tmp_path / "bin").mkdir()
  (tmp_path / "bin" / "x.bin").write_bytes(b"\0" * 10)
  for path in (tmp_path / "empty", tmp_path / "bin", tmp_path / "nope"):
    cfg = DataConfig(source="files", path=str(path), cache_dir=str(tmp_path))
    with pytest.raises(DataError) as e:
      pipeline.build_dataset(cfg, batch_size=2, seed=0)
    assert "\n" not in str(e.value)
  assert issubclass(DataError, ConfigError)


def test_too_small_corpus_and_bad_process_count_are_errors(tmp_path):
  (tmp_path / "t.txt").write_text("tiny corpus " * 20)
  cfg = DataConfig(source="files", path=str(tmp_path / "t.txt"), seq_len=16,
                   cache_dir=str(tmp_path))
  with pytest.raises(DataError, match="too small"):
    pipeline.build_dataset(cfg, batch_size=4, seed=0)
  with pytest.raises(DataError, match="divisible"):
    _dataset(batch_size=6, P=4)
  with pytest.raises(DataError):
    _dataset(p=2, P=2)


# ------------------------------------------------------------------ packing


def test_rows_are_the_stream_in_order_and_splits_are_disjoint():
  stream = _stream(10_007)
  ds = pipeline.ArrayDataset(stream, tok_lib.ByteTokenizer(), 15, 0.1,
                             batch_size=4, seed=0)
  assert ds.rows.shape[1] == 16
  np.testing.assert_array_equal(ds.rows.ravel(), stream[:ds.rows.size])
  assert len(stream) - ds.rows.size < 16            # only the tail is dropped
  n_train = len(ds.train_rows)
  assert len(ds.val_rows) == int(np.ceil(0.1 * len(ds.rows)))
  # Token ranges: train = [0, n_train*16), val = [n_train*16, rows.size).
  np.testing.assert_array_equal(ds.train_rows.ravel(),
                                stream[:n_train * 16])
  np.testing.assert_array_equal(ds.val_rows.ravel(),
                                stream[n_train * 16:ds.rows.size])
  # Every training batch only contains training rows; eval only val rows.
  train_ids = {r.tobytes() for r in ds.train_rows}
  val_ids = {r.tobytes() for r in ds.val_rows}
  it = ds.train_iterator()
  seen = {r.astype(np.uint16).tobytes() for b in it.take(200) for r in b}
  assert seen <= train_ids and not seen & val_ids
  ev = ds.eval_batches(3)
  assert len(ev) == 3 and all(b.shape == (4, 16) and b.dtype == np.int32
                              for b in ev)
  np.testing.assert_array_equal(np.concatenate(ev), ds.val_rows[:12])
  assert len(ds.eval_batches(10**6)) == len(ds.val_rows) // 4


def test_each_epoch_visits_every_training_row_once():
  ds = _dataset(n_tokens=4000, seq_len=15, batch_size=8)
  it = ds.train_iterator()
  spe = it.steps_per_epoch
  assert spe == len(ds.train_rows) // 8
  idx = it.row_indices(np.arange(2 * spe))
  for e in range(2):
    ep = idx[e * spe:(e + 1) * spe].ravel()
    assert len(set(ep.tolist())) == len(ep) == spe * 8
  assert not np.array_equal(idx[:spe], idx[spe:])     # reshuffled per epoch


def test_resume_equals_uninterrupted_and_take_equals_next():
  ds = _dataset()
  ref = ds.train_iterator().take(300)                 # crosses epochs
  assert ref.shape == (300, 8, 16) and ref.dtype == np.int32
  it = ds.train_iterator()
  first = np.stack([next(it) for _ in range(123)])
  np.testing.assert_array_equal(first, ref[:123])
  state = json.loads(json.dumps(it.get_state()))
  resumed = ds.train_iterator(state)
  np.testing.assert_array_equal(resumed.take(177), ref[123:])
  fresh = ds.train_iterator()
  fresh.set_state({"step": 250})
  np.testing.assert_array_equal(fresh.take(50), ref[250:])
  with pytest.raises(DataError):
    fresh.set_state({"step": -1})


def test_different_seeds_give_different_orders():
  a = _dataset(seed=0).train_iterator().take(5)
  b = _dataset(seed=1).train_iterator().take(5)
  assert not np.array_equal(a, b)
  np.testing.assert_array_equal(a, _dataset(seed=0).train_iterator().take(5))


def test_process_slices_concatenate_to_the_global_batch():
  P = 4
  glob = _dataset(batch_size=8).train_iterator().take(40)
  parts = [_dataset(batch_size=8, p=p, P=P).train_iterator().take(40)
           for p in range(P)]
  assert parts[0].shape == (40, 2, 16)
  np.testing.assert_array_equal(np.concatenate(parts, axis=1), glob)
  ev = np.stack(_dataset(batch_size=8).eval_batches(2))
  ev_parts = [np.stack(_dataset(batch_size=8, p=p, P=P).eval_batches(2))
              for p in range(P)]
  np.testing.assert_array_equal(np.concatenate(ev_parts, axis=1), ev)
