"""Token cache: layout and manifest, cached == uncached, stale or corrupt
caches rebuilt with a warning, killed builds never trusted, parallel workers,
hosts reading disjoint rows."""
import hashlib
import json
import logging
import os

import numpy as np
import pytest

from lm.config import DataConfig
from lm.data import encode
from lm.data import pipeline
from lm.data import token_cache


def _corpus_dir(root, n=40):
  root.mkdir(parents=True, exist_ok=True)
  for i in range(n):
    (root / f"f{i:02d}.txt").write_text(f"file {i} ünïcode\n" * (40 + 7 * i))
  return root


@pytest.fixture
def files_cfg(tmp_path):
  src = _corpus_dir(tmp_path / "text")
  return DataConfig(source="files", path=str(src), seq_len=16,
                    val_fraction=0.1, cache_dir=str(tmp_path / "cache"))


def _cache_dirs(cfg):
  root = os.path.join(cfg.cache_dir, "tokens")
  return sorted(d for d in os.listdir(root)
                if os.path.isdir(os.path.join(root, d)))


def test_layout_manifest_and_memory_map(files_cfg):
  pipeline.clear_memo()
  ds = pipeline.build_dataset(files_cfg, batch_size=4, seed=0)
  dirs = _cache_dirs(files_cfg)
  assert [d.split("-")[1] for d in dirs] == ["train", "val"]
  for stream in (ds.train_stream, ds.val):
    files = sorted(os.listdir(stream.path))
    assert files == ["doc_offsets.npy", "manifest.json", "tokens.bin"]
    m = json.load(open(os.path.join(stream.path, "manifest.json")))
    assert set(m) == set(token_cache.MANIFEST_KEYS)
    assert m["format_version"] == token_cache.FORMAT_VERSION
    assert m["dtype"] == "uint16" and m["tokenizer"]["type"] == "byte"
    raw = open(os.path.join(stream.path, "tokens.bin"), "rb").read()
    assert len(raw) == 2 * m["n_tokens"]
    assert hashlib.sha256(raw).hexdigest() == m["tokens_sha256"]
    assert isinstance(stream.tokens, np.memmap)
    assert m["n_documents"] == stream.n_documents
    assert int((np.asarray(stream.tokens) == 256).sum()) == m["n_documents"]
  # Training rows are views of the memory map, not copies.
  assert np.shares_memory(ds.train_rows, ds.train_stream.tokens)
  assert ds.metadata["train"]["cache"] == ds.train_stream.path


def test_cached_equals_uncached(files_cfg):
  import dataclasses
  ds = pipeline.build_dataset(files_cfg, batch_size=4, seed=2)
  mem = pipeline.build_dataset(dataclasses.replace(files_cfg,
                                                   token_cache=False),
                               batch_size=4, seed=2)
  assert mem.train_stream.path is None
  np.testing.assert_array_equal(ds.train_rows, mem.train_rows)
  np.testing.assert_array_equal(ds.train_iterator().take(30),
                                mem.train_iterator().take(30))
  assert ds.eval_set(64).sha256 == mem.eval_set(64).sha256
  assert (ds.train_stream.manifest["tokens_sha256"]
          == mem.train_stream.manifest["tokens_sha256"])


def _flip_byte(path):
  with open(os.path.join(path, "tokens.bin"), "r+b") as f:
    f.seek(10)
    b = f.read(1)
    f.seek(10)
    f.write(bytes([b[0] ^ 1]))


def _truncate(path):
  with open(os.path.join(path, "tokens.bin"), "r+b") as f:
    f.truncate(100)


def _old_format(path):
  mpath = os.path.join(path, "manifest.json")
  m = json.load(open(mpath))
  m["format_version"] = 0
  json.dump(m, open(mpath, "w"))


def _no_manifest(path):
  os.remove(os.path.join(path, "manifest.json"))


@pytest.mark.parametrize("damage,reason", [
    (_flip_byte, "sha256 differs"), (_truncate, "bytes"),
    (_old_format, "format version"), (_no_manifest, "no manifest")])
def test_stale_or_corrupt_cache_is_rebuilt_with_one_warning(
    files_cfg, caplog, damage, reason):
  ref = pipeline.build_dataset(files_cfg, batch_size=4, seed=0)
  ref_rows = np.array(ref.train_rows)
  path = ref.train_stream.path
  pipeline.clear_memo()
  damage(path)
  with caplog.at_level(logging.WARNING, logger="lm.data.token_cache"):
    ds = pipeline.build_dataset(files_cfg, batch_size=4, seed=0)
  warnings = [r.getMessage() for r in caplog.records
              if r.levelno >= logging.WARNING]
  assert len(warnings) == 1 and "rebuilding token cache" in warnings[0]
  assert reason in warnings[0] and "\n" not in warnings[0]
  np.testing.assert_array_equal(ds.train_rows, ref_rows)
  caplog.clear()
  pipeline.clear_memo()
  pipeline.build_dataset(files_cfg, batch_size=4, seed=0)  # valid again
  assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_killed_build_leaves_nothing_that_is_trusted(files_cfg, monkeypatch):
  pipeline.clear_memo()
  calls = []
  real = encode._encode  # pylint: disable=protected-access

  def dies_midway(tok, texts):
    calls.append(1)
    if len(calls) == 2:
      raise KeyboardInterrupt   # as if killed after writing one chunk
    return real(tok, texts)

  monkeypatch.setattr(token_cache, "CHUNK_BYTES", 2000)
  monkeypatch.setattr(encode, "_encode", dies_midway)
  with pytest.raises(KeyboardInterrupt):
    pipeline.build_dataset(files_cfg, batch_size=4, seed=0)
  root = os.path.join(files_cfg.cache_dir, "tokens")
  assert not [d for d in os.listdir(root) if os.path.isdir(
      os.path.join(root, d))]
  # A SIGKILLed build leaves its temporary directory behind: never read,
  # removed by the next build.
  monkeypatch.setattr(encode, "_encode", real)
  ds = pipeline.build_dataset(files_cfg, batch_size=4, seed=0)
  stale = ds.val.path + ".tmp-999999"
  os.makedirs(stale)
  open(os.path.join(stale, "tokens.bin"), "wb").write(b"garbage")
  pipeline.clear_memo()
  os.remove(os.path.join(ds.val.path, "manifest.json"))
  again = pipeline.build_dataset(files_cfg, batch_size=4, seed=0)
  assert not os.path.exists(stale)
  np.testing.assert_array_equal(np.asarray(again.val.tokens),
                                np.asarray(ds.val.tokens))


def test_parallel_workers_tokenize_the_same_as_one(tmp_path, monkeypatch):
  pytest.importorskip("sentencepiece")
  src = _corpus_dir(tmp_path / "text", n=60)
  cfg = DataConfig(source="files", path=str(src), seq_len=16,
                   tokenizer="sentencepiece", sp_vocab_size=96,
                   val_fraction=0.1, cache_dir=str(tmp_path / "one"))
  one = pipeline.build_dataset(cfg, batch_size=4, seed=0)
  assert one.train_stream.manifest["build"]["workers"] == 1  # small source
  monkeypatch.setattr(token_cache, "CHUNK_BYTES", 4000)  # several tasks
  import dataclasses
  two = pipeline.build_dataset(
      dataclasses.replace(cfg, cache_workers=2,
                          cache_dir=str(tmp_path / "two"),
                          sp_model_path=one.tokenizer.model_path),
      batch_size=4, seed=0)
  m1, m2 = one.train_stream.manifest, two.train_stream.manifest
  assert m2["build"]["workers"] == 2
  assert m1["tokens_sha256"] == m2["tokens_sha256"]
  assert m1["doc_offsets_sha256"] == m2["doc_offsets_sha256"]


def test_hosts_read_disjoint_cached_rows_and_resume_exactly(files_cfg):
  glob = pipeline.build_dataset(files_cfg, batch_size=4, seed=1)
  ref = glob.train_iterator().take(50)
  hosts = [pipeline.build_dataset(files_cfg, batch_size=4, seed=1,
                                  process_index=p, process_count=2)
           for p in range(2)]
  idx = [h.train_iterator().row_indices(np.arange(50)) for h in hosts]
  for s in range(50):  # each host reads only its own rows of every batch
    assert not set(idx[0][s]) & set(idx[1][s])
  parts = [h.train_iterator().take(50) for h in hosts]
  np.testing.assert_array_equal(np.concatenate(parts, axis=1), ref)
  it = hosts[1].train_iterator()
  it.take(17)
  resumed = hosts[1].train_iterator(json.loads(json.dumps(it.get_state())))
  np.testing.assert_array_equal(resumed.take(33), parts[1][17:])


def test_unwritable_cache_dir_falls_back_to_memory(files_cfg, tmp_path,
                                                   caplog):
  import dataclasses
  blocked = tmp_path / "blocked"
  blocked.write_text("a file where the cache directory should be")
  cfg = dataclasses.replace(files_cfg, cache_dir=str(blocked))
  with caplog.at_level(logging.WARNING):
    ds = pipeline.build_dataset(cfg, batch_size=4, seed=0)
  assert ds.train_stream.path is None
  assert any("tokenizing in memory" in r.getMessage() for r in caplog.records)


def test_a_worker_that_cannot_start_fails_instead_of_hanging(tmp_path):
  from concurrent.futures.process import BrokenProcessPool
  from lm.data import tokenizers as tok_lib

  class Unloadable(tok_lib.ByteTokenizer):
    def spec(self):
      return ("sentencepiece", str(tmp_path / "missing.model"))

  with pytest.raises(BrokenProcessPool):
    list(encode.encode_chunks(Unloadable(), [["a"], ["b"], ["c"]], workers=2))
