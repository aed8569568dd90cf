"""Data pipeline properties: corpora, the document split, packing, iterators."""
import dataclasses
import json
import os
import sysconfig

import numpy as np
import pytest

from lm.config import ConfigError, DataConfig
from lm.data import corpus as corpus_lib
from lm.data import pipeline
from lm.data import sources as sources_lib
from lm.data import split as split_lib
from lm.data import tokenizers as tok_lib
from lm.data.corpus import DataError
from lm.data.token_cache import TokenStream


def _stream(n, seed=0, vocab=257):
  return np.random.default_rng(seed).integers(0, vocab, n).astype(np.uint16)


def _dataset(n_tokens=20_000, seq_len=15, batch_size=8, seed=0, p=0, P=1):
  return pipeline.ArrayDataset(
      TokenStream.from_array(_stream(n_tokens)),
      TokenStream.from_array(_stream(2_000, seed=99)), tok_lib.ByteTokenizer(),
      seq_len, batch_size=batch_size, seed=seed, process_index=p,
      process_count=P)


def _decode_docs(stream, tok):
  off = stream.doc_offsets
  return [tok.decode(stream.tokens[off[d]:off[d + 1] - 1])
          for d in range(stream.n_documents)]


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




# ------------------------------------------------------------ document split


def test_document_split_is_disjoint_deterministic_and_sized():
  rng = np.random.default_rng(0)
  keys = [f"pkg{i % 7}/mod_{i}.py" for i in range(500)]
  sizes = [int(s) for s in rng.lognormal(8, 1.5, 500)]
  a = split_lib.document_split(keys, sizes, 0.05)
  b = split_lib.document_split(list(reversed(keys)), list(reversed(sizes)),
                               0.05)
  assert not set(a.train) & set(a.val)
  assert sorted(a.train.tolist() + a.val.tolist()) == list(range(500))
  # The same documents whatever the list order: the rule depends on keys only.
  assert ({keys[i] for i in a.val}
          == {list(reversed(keys))[i] for i in b.val})
  held = sum(sizes[i] for i in a.val)
  assert held >= 0.05 * sum(sizes)
  assert held - max(sizes[i] for i in a.val) < 0.05 * sum(sizes)  # minimal
  # Held-out documents are spread over the list, not a contiguous tail.
  assert a.val.min() < 100 and a.val.max() > 400
  # Growing the corpus moves at most the one boundary document (salted rank).
  bigger = split_lib.document_split(keys + ["new/x.py"], sizes + [10], 0.05)
  assert len(set(a.val.tolist()) ^ (set(bigger.val.tolist()) - {500})) <= 1


def test_dataset_split_shares_no_document_and_tokenizer_sees_train_only(
    tmp_path):
  cfg = DataConfig(seq_len=64, max_corpus_bytes=1_000_000, val_fraction=0.05,
                   cache_dir=str(tmp_path))
  ds = pipeline.build_dataset(cfg, batch_size=8, seed=0)
  corpus = sources_lib.load_corpus(cfg)
  tok = ds.tokenizer
  train_docs = _decode_docs(pipeline.build_dataset(  # via the memo
      cfg, batch_size=4, seed=1).train_stream, tok)
  val_docs = _decode_docs(ds.val, tok)
  docs = corpus.documents()
  split = split_lib.document_split(corpus.keys, corpus.sizes, 0.05)
  assert val_docs == [docs[i] for i in split.val]      # streams hold exactly
  assert train_docs == [docs[i] for i in split.train]  # their side's documents
  val_keys = {corpus.keys[i] for i in split.val}
  assert not val_keys & {corpus.keys[i] for i in split.train}
  assert len(split.val) + len(split.train) == len(docs)
  md = ds.metadata["split"]
  assert md["n_val_documents"] == len(val_docs) >= 2
  assert sum(map(len, val_docs)) >= 0.05 * sum(map(len, docs)) * 0.99
  assert md["rule"] == split_lib.DOC_RULE and len(md["split_sha256"]) == 64
  # SentencePiece trains on exactly the training documents.
  src = sources_lib.sources_for(cfg)
  assert sorted(src.sp_corpus.documents()) == sorted(train_docs)
  assert src.sp_corpus.sha256 != corpus.sha256
  json.dumps(ds.metadata)


def test_count_train_tokens_is_exact_without_training(tmp_path):
  cfg = DataConfig(seq_len=32, max_corpus_bytes=300_000,
                   cache_dir=str(tmp_path))
  pipeline.clear_memo()
  n = pipeline.count_train_tokens(cfg)          # builds the byte cache
  ds = pipeline.build_dataset(cfg, batch_size=4, seed=0)
  assert n == ds.unique_train_tokens == len(ds.train_rows) * 32
  assert n == ds.metadata["train"]["n_tokens"] // 33 * 32
  assert pipeline.count_train_tokens(dataclasses.asdict(cfg)) == n
  sp = DataConfig(seq_len=32, max_corpus_bytes=300_000, cache_dir=str(tmp_path),
                  tokenizer="sentencepiece", sp_vocab_size=128)
  assert pipeline.count_train_tokens(sp) is None  # would need training
  assert pipeline.epochs_of(2 * n, n) == 2.0
  pipeline.check_max_epochs(n, n, 1.0)
  with pytest.raises(DataError, match=f"needs {n:,} more unique tokens"):
    pipeline.check_max_epochs(2 * n, n, 1.0)


def test_files_source_walks_dirs_and_round_trips(tmp_path):
  root = tmp_path / "txt"
  (root / "sub").mkdir(parents=True)
  texts = {f"d{i}.txt": f"document {i} wörld\n" * (50 + i) for i in range(30)}
  texts.update({"sub/b.md": "# title\n" * 80, "sub/c.py": "x = 1\n" * 70})
  for rel, text in texts.items():
    (root / rel).write_text(text, encoding="utf-8")
  (root / ".hidden.txt").write_text("secret")
  (root / "blob.bin").write_bytes(b"\0\1\2" * 100)
  extra = tmp_path / "extra.txt"
  extra.write_text("extra file " * 30)
  cfg = DataConfig(source="files", path=f"{root},{extra}", seq_len=16,
                   val_fraction=0.1, cache_dir=str(tmp_path / "c"))
  ds = pipeline.build_dataset(cfg, batch_size=2, seed=0)
  tok = ds.tokenizer
  got = _decode_docs(ds.train_stream, tok) + _decode_docs(ds.val, tok)
  assert sorted(got) == sorted(list(texts.values()) + [extra.read_text()])
  assert ds.metadata["split"]["n_val_documents"] >= 2


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


def test_rows_are_the_train_stream_in_order_and_batches_are_train_rows():
  ds = _dataset(n_tokens=10_007, seq_len=15, batch_size=4)
  stream = ds.train_stream.tokens
  assert ds.train_rows.shape[1] == 16
  np.testing.assert_array_equal(ds.train_rows.ravel(),
                                stream[:ds.train_rows.size])
  assert len(stream) - ds.train_rows.size < 16          # only the tail dropped
  train_ids = {r.tobytes() for r in ds.train_rows}
  seen = {r.astype(np.uint16).tobytes()
          for b in ds.train_iterator().take(200) for r in b}
  assert seen <= train_ids
  assert ds.unique_train_tokens == len(ds.train_rows) * 15


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


def test_processes_read_disjoint_rows_that_make_the_global_batch():
  P = 4
  glob = _dataset(batch_size=8).train_iterator()
  parts = [_dataset(batch_size=8, p=p, P=P).train_iterator() for p in range(P)]
  steps = np.arange(40)
  idx = [it.row_indices(steps) for it in parts]
  assert idx[0].shape == (40, 2)
  for s in range(40):  # each process reads only its own rows
    rows = [set(i[s].tolist()) for i in idx]
    assert all(not rows[a] & rows[b] for a in range(P) for b in range(a))
  np.testing.assert_array_equal(np.concatenate(idx, axis=1),
                                glob.row_indices(steps))
  np.testing.assert_array_equal(
      np.concatenate([it.take(40) for it in parts], axis=1), glob.take(40))
