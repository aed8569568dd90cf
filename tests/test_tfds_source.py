"""tfds source: tiny array_record datasets prepared offline, read via
tfds.data_source into the token cache (default) or the uncached stream packer."""
import dataclasses
import json

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")
pytest.importorskip("grain")

from lm.config import DataConfig  # pylint: disable=g-import-not-at-top
from lm.data import pipeline
from lm.data import sources as sources_lib
from lm.data import split as split_lib
from lm.data.corpus import DataError

N = {"train": 60, "test": 12, "validation": 10}


def _doc(split, i):
  return f"{split} doc {i}: héllo wörld ☃ " + "abc " * (i % 7)


class _Tiny(tfds.core.GeneratorBasedBuilder):
  VERSION = tfds.core.Version("1.0.0")
  # tfds 4.9.10 derives code_path with importlib_resources, which it only
  # declares for Python < 3.9; a test-local builder has no code dir anyway.
  code_path = None
  SPLITS = ("train", "test")

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        features=tfds.features.FeaturesDict({"text": tfds.features.Text()}))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {s: self._generate_examples(s, N[s]) for s in self.SPLITS}

  def _generate_examples(self, split, n):
    for i in range(n):
      yield f"{split}{i}", {"text": _doc(split, i)}


class ScalinglmTinyText(_Tiny):
  """Test-only dataset with train and test splits (scalinglm_tiny_text)."""


class ScalinglmTinyTextVal(_Tiny):
  """Test-only dataset with a validation split (scalinglm_tiny_text_val)."""
  SPLITS = ("train", "validation")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  d = tmp_path_factory.mktemp("tfds")
  for cls in (ScalinglmTinyText, ScalinglmTinyTextVal):
    cls(data_dir=str(d), file_format="array_record").download_and_prepare()
  return str(d)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("cache"))


def _cfg(data_dir, name="scalinglm_tiny_text", **kw):
  kw.setdefault("seq_len", 31)
  return DataConfig(source="tfds", tfds_name=name, tfds_data_dir=data_dir,
                    **kw)


def _stored(data_dir, split, name="scalinglm_tiny_text"):
  src = tfds.data_source(name, split=split, data_dir=data_dir)
  return [src[i]["text"].decode("utf-8") for i in range(len(src))]


def _docs_of(stream, eos=256):
  flat = np.concatenate([np.asarray(b).ravel() for b in stream])
  pieces = np.split(flat, np.flatnonzero(flat == eos) + 1)[:-1]
  return [bytes(p[:-1].astype(np.uint8)).decode("utf-8") for p in pieces]


def test_cache_holds_each_split_in_record_order(data_dir, cache_dir):
  cfg = _cfg(data_dir, tfds_val_split="test", cache_dir=cache_dir)
  ds = pipeline.build_dataset(cfg, batch_size=4, seed=0)
  assert _docs_of([ds.train_stream.tokens]) == _stored(data_dir, "train")
  assert _docs_of([ds.val.tokens]) == _stored(data_dir, "test")
  m = ds.train_stream.manifest
  assert m["source"]["full_name"] == "scalinglm_tiny_text/1.0.0"
  assert m["source"]["split"] == "train" and m["n_documents"] == N["train"]
  # Training batches are rows of the cached train stream, shuffled by row.
  batches = ds.train_iterator().take(2 * ds.metadata["steps_per_epoch"])
  rows = {r.tobytes() for r in ds.train_rows.astype(np.int32)}
  assert {r.tobytes() for b in batches for r in b} <= rows
  assert pipeline.count_train_tokens(cfg) == ds.unique_train_tokens
  md = ds.metadata
  assert md["split"]["rule"] == "tfds split 'test'"
  assert md["corpus"]["n_train_records"] == N["train"]
  json.dumps(md)


def test_validation_split_is_auto_detected(data_dir, cache_dir):
  name = "scalinglm_tiny_text_val"
  cfg = _cfg(data_dir, name=name, cache_dir=cache_dir, seq_len=15)
  ds = pipeline.build_dataset(cfg, batch_size=2, seed=0)
  assert ds.metadata["split"]["rule"] == "tfds split 'validation' (auto-detected)"
  assert _docs_of([ds.val.tokens]) == _stored(data_dir, "validation", name)
  assert _docs_of([ds.train_stream.tokens]) == _stored(data_dir, "train", name)
  es = ds.eval_set(15 * 10)
  assert es.n_tokens == 150 and es.rows.shape == (10, 16)


def test_carved_validation_is_disjoint_from_training(data_dir, cache_dir):
  cfg = _cfg(data_dir, val_fraction=0.25, cache_dir=cache_dir)
  ds = pipeline.build_dataset(cfg, batch_size=2, seed=3)
  stored = _stored(data_dir, "train")
  held = split_lib.record_split(N["train"], 0.25).val
  assert 8 <= len(held) <= 22                     # ~ 0.25 x 60
  assert _docs_of([ds.val.tokens]) == [stored[i] for i in held]
  train_idx = [i for i in range(N["train"]) if i not in set(held.tolist())]
  assert _docs_of([ds.train_stream.tokens]) == [stored[i] for i in train_idx]
  assert ds.metadata["split"]["rule"] == split_lib.RECORD_RULE
  assert ds.metadata["split"]["n_val_documents"] == len(held)
  # SentencePiece's sample comes from training records only.
  sp = dataclasses.replace(cfg, tokenizer="sentencepiece", sp_vocab_size=64)
  sample = sources_lib.sources_for(sp).sp_corpus.documents()
  assert sample and set(sample) <= {stored[i] for i in train_idx}


def test_cached_resume_and_process_slices(data_dir, cache_dir):
  cfg = _cfg(data_dir, tfds_val_split="test", cache_dir=cache_dir)
  ds = pipeline.build_dataset(cfg, batch_size=4, seed=1)
  ref = ds.train_iterator().take(30)
  it = ds.train_iterator()
  it.take(11)
  state = json.loads(json.dumps(it.get_state()))
  assert state == {"step": 11}      # the batch at step s depends on (seed, s)
  np.testing.assert_array_equal(ds.train_iterator(state).take(19), ref[11:])
  parts = [pipeline.build_dataset(cfg, batch_size=4, seed=1, process_index=p,
                                  process_count=2).train_iterator().take(30)
           for p in range(2)]
  np.testing.assert_array_equal(np.concatenate(parts, axis=1), ref)
  other = pipeline.build_dataset(cfg, batch_size=4, seed=2).train_iterator()
  assert not np.array_equal(other.take(30), ref)


def test_uncached_stream_packer_shuffles_records_and_resumes(data_dir):
  cfg = _cfg(data_dir, tfds_val_split="test", token_cache=False)
  ds = pipeline.build_dataset(cfg, batch_size=4, seed=0)
  batches = ds.train_iterator().take(60)    # 60*4*32 tokens > 2 epochs
  assert batches.shape == (60, 4, 32) and batches.dtype == np.int32
  docs = _docs_of(batches)
  expected = sorted(_doc("train", i) for i in range(N["train"]))
  assert sorted(docs[:N["train"]]) == expected
  assert sorted(docs[N["train"]:2 * N["train"]]) == expected
  assert docs[:N["train"]] != docs[N["train"]:2 * N["train"]]  # reshuffled
  it = ds.train_iterator()
  it.take(11)
  state = json.loads(json.dumps(it.get_state()))
  resumed = pipeline.build_dataset(cfg, batch_size=4, seed=0).train_iterator(
      state)
  np.testing.assert_array_equal(resumed.take(19), batches[11:30])
  # Validation is the same whether or not the cache is used.
  cached = pipeline.build_dataset(dataclasses.replace(cfg, token_cache=True),
                                  batch_size=4, seed=0)
  assert ds.eval_set(31 * 5).sha256 == cached.eval_set(31 * 5).sha256
  assert ds.unique_train_tokens is None


def test_missing_or_unprepared_dataset_is_a_one_line_error(data_dir, tmp_path):
  cases = [_cfg(str(tmp_path / "nope")),
           _cfg(str(tmp_path)),                       # not prepared there
           DataConfig(source="tfds", tfds_name="no_such_dataset_xyz",
                      tfds_data_dir=data_dir),
           _cfg(data_dir, tfds_val_split="validation"),
           _cfg(data_dir, text_key="body", cache_dir=str(tmp_path))]
  for cfg in cases:
    with pytest.raises(DataError) as e:
      pipeline.build_dataset(cfg, batch_size=2, seed=0)
    assert "\n" not in str(e.value), str(e.value)


def test_sentencepiece_on_tfds(data_dir, tmp_path):
  pytest.importorskip("sentencepiece")
  cfg = _cfg(data_dir, tfds_val_split="test", tokenizer="sentencepiece",
             sp_vocab_size=64, cache_dir=str(tmp_path))
  ds = pipeline.build_dataset(cfg, batch_size=2, seed=0)
  tok = ds.tokenizer
  b = ds.train_iterator().take(20)
  assert b.max() < tok.vocab_size
  stream = np.asarray(ds.train_stream.tokens)
  cuts = np.flatnonzero(stream == tok.eos_id)
  docs = [tok.decode(p[:-1]) for p in np.split(stream, cuts + 1)[:-1]]
  assert docs == _stored(data_dir, "train")
