"""tfds source: a tiny array_record dataset prepared offline, read via grain."""
import json

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")
pytest.importorskip("grain")

from lm.config import DataConfig  # pylint: disable=g-import-not-at-top
from lm.data import pipeline
from lm.data.corpus import DataError

N_TRAIN, N_TEST = 60, 12


def _doc(split, i):
  return f"{split} doc {i}: héllo wörld ☃ " + "abc " * (i % 7)


class ScalinglmTinyText(tfds.core.GeneratorBasedBuilder):
  """Test-only dataset (name: scalinglm_tiny_text)."""
  VERSION = tfds.core.Version("1.0.0")
  # tfds 4.9.10 derives code_path with importlib_resources, which it only
  # declares for Python < 3.9; a test-local builder has no code dir anyway.
  code_path = None

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        features=tfds.features.FeaturesDict({"text": tfds.features.Text()}))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples("train", N_TRAIN),
            "test": self._generate_examples("test", N_TEST)}

  def _generate_examples(self, split, n):
    for i in range(n):
      yield f"{split}{i}", {"text": _doc(split, i)}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  d = tmp_path_factory.mktemp("tfds")
  ScalinglmTinyText(data_dir=str(d), file_format="array_record"
                    ).download_and_prepare()
  return str(d)


def _cfg(data_dir, **kw):
  kw.setdefault("seq_len", 31)
  return DataConfig(source="tfds", tfds_name="scalinglm_tiny_text",
                    tfds_data_dir=data_dir, **kw)


def _stored(data_dir, split):
  src = tfds.data_source("scalinglm_tiny_text", split=split, data_dir=data_dir)
  return [src[i]["text"].decode("utf-8") for i in range(len(src))]


def _docs_of(batches, eos=256):
  stream = np.concatenate([b.ravel() for b in batches])
  cuts = np.flatnonzero(stream == eos)
  pieces = np.split(stream, cuts + 1)[:-1]
  return [bytes(p[:-1].astype(np.uint8)).decode("utf-8") for p in pieces]


def test_text_round_trips_and_one_epoch_is_a_permutation(data_dir):
  ds = pipeline.build_dataset(_cfg(data_dir, tfds_val_split="test"),
                              batch_size=4, seed=0)
  batches = ds.train_iterator().take(60)    # 60*4*32 tokens > 2 epochs
  assert batches.shape == (60, 4, 32) and batches.dtype == np.int32
  docs = _docs_of(batches)
  expected = sorted(_doc("train", i) for i in range(N_TRAIN))
  assert sorted(docs[:N_TRAIN]) == expected
  assert sorted(docs[N_TRAIN:2 * N_TRAIN]) == expected
  assert docs[:N_TRAIN] != docs[N_TRAIN:2 * N_TRAIN]  # reshuffled per epoch
  assert docs[:N_TRAIN] != [_doc("train", i) for i in range(N_TRAIN)]
  ev = ds.eval_batches(100)                  # capped at what the split holds
  assert 0 < len(ev) < 100
  val_docs = _docs_of(ev)
  # Validation is the split in its stored order (tfds shuffles at prepare).
  stored = _stored(data_dir, "test")
  assert sorted(stored) == sorted(_doc("test", i) for i in range(N_TEST))
  assert val_docs == stored[:len(val_docs)]
  assert len(val_docs) >= len(ev) * 4 * 32 // 60  # docs are < 60 tokens
  assert ds.metadata["corpus"]["n_train_records"] == N_TRAIN


def test_carved_validation_is_disjoint_from_training(data_dir):
  ds = pipeline.build_dataset(_cfg(data_dir, val_fraction=0.25),
                              batch_size=2, seed=3)
  n_val = 15                                 # ceil(0.25 * 60)
  stored = _stored(data_dir, "train")
  train_docs = set(_docs_of(ds.train_iterator().take(60)))
  assert train_docs == set(stored[:N_TRAIN - n_val])
  val_docs = _docs_of(ds.eval_batches(1000))
  assert val_docs and val_docs == stored[N_TRAIN - n_val:][:len(val_docs)]
  assert not train_docs & set(val_docs)


def test_resume_and_process_slices(data_dir):
  cfg = _cfg(data_dir, tfds_val_split="test")
  ds = pipeline.build_dataset(cfg, batch_size=4, seed=1)
  ref = ds.train_iterator().take(30)
  it = ds.train_iterator()
  it.take(11)
  state = json.loads(json.dumps(it.get_state()))
  resumed = pipeline.build_dataset(cfg, batch_size=4, seed=1).train_iterator(
      state)
  np.testing.assert_array_equal(resumed.take(19), ref[11:])
  parts = [pipeline.build_dataset(cfg, batch_size=4, seed=1, process_index=p,
                                  process_count=2).train_iterator().take(30)
           for p in range(2)]
  np.testing.assert_array_equal(np.concatenate(parts, axis=1), ref)
  other = pipeline.build_dataset(cfg, batch_size=4, seed=2).train_iterator()
  assert not np.array_equal(other.take(30), ref)


def test_missing_or_unprepared_dataset_is_a_one_line_error(data_dir, tmp_path):
  cases = [_cfg(str(tmp_path / "nope")),
           _cfg(str(tmp_path)),                       # not prepared there
           DataConfig(source="tfds", tfds_name="no_such_dataset_xyz",
                      tfds_data_dir=data_dir),
           _cfg(data_dir, tfds_val_split="validation"),
           _cfg(data_dir, text_key="body")]
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
  stream = np.concatenate([x.ravel() for x in b])
  cuts = np.flatnonzero(stream == tok.eos_id)
  docs = [tok.decode(p[:-1]) for p in np.split(stream, cuts + 1)[1:-1]]
  assert docs and set(docs) <= {_doc("train", i) for i in range(N_TRAIN)}
