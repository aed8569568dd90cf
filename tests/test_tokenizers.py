"""Tokenizer properties: round trips, EOS layout, SentencePiece caching."""
import json
import os

import numpy as np
import pytest

from lm.config import DataConfig
from lm.data import corpus as corpus_lib
from lm.data import tokenizers as tok_lib
from lm.data.corpus import DataError


def _random_unicode(rng, n):
  """Random strings over all planes, surrogates excluded."""
  cps = rng.integers(0, 0x110000, size=n)
  cps = np.where((cps >= 0xD800) & (cps < 0xE000), cps - 0x800, cps)
  mix = rng.integers(32, 127, size=n)          # plus plenty of ASCII
  cps = np.where(rng.random(n) < 0.5, mix, cps)
  return "".join(map(chr, cps))


def test_byte_tokenizer_round_trips_arbitrary_unicode():
  tok = tok_lib.ByteTokenizer()
  rng = np.random.default_rng(0)
  for n in (0, 1, 7, 300):
    for _ in range(20):
      s = _random_unicode(rng, n)
      ids = tok.encode(s)
      assert all(0 <= i < 256 for i in ids)
      assert len(ids) == len(s.encode("utf-8"))
      assert tok.decode(ids) == s
  assert tok.vocab_size == 257 and tok.eos_id == 256
  assert tok.decode([104, 256, 105]) == "hi"   # EOS is not text


def test_encode_documents_puts_one_eos_after_each_document():
  tok = tok_lib.ByteTokenizer()
  docs = ["abc", "", "é\n", "x" * 1000]
  stream = tok.encode_documents(docs)
  expected = []
  for d in docs:
    expected += list(d.encode("utf-8")) + [256]
  np.testing.assert_array_equal(stream, expected)
  # The generic (per-document) path agrees with the vectorised byte path.
  generic = tok_lib.Tokenizer.encode_documents(tok, docs)
  np.testing.assert_array_equal(generic, stream)


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
  pytest.importorskip("sentencepiece")
  cache = str(tmp_path_factory.mktemp("cache"))
  return corpus_lib.stdlib_corpus(max_bytes=250_000, cache_dir=cache), cache


def test_sentencepiece_trains_round_trips_and_is_cached(small_corpus):
  corpus, cache = small_corpus
  cfg = DataConfig(tokenizer="sentencepiece", sp_vocab_size=200,
                   cache_dir=cache)
  calls = tok_lib.SP_TRAIN_CALLS[0]
  tok = tok_lib.build_tokenizer(cfg, corpus)
  assert tok_lib.SP_TRAIN_CALLS[0] == calls + 1
  assert tok.vocab_size == 200
  path = tok_lib.sp_model_cache_path(corpus, 200, cache)
  assert os.path.isfile(path)
  mtime = os.stat(path).st_mtime_ns
  for doc in corpus.documents()[:5]:
    text = doc[:2000]
    ids = tok.encode(text)
    assert len(ids) < len(text.encode("utf-8"))   # it compresses
    assert tok.decode(ids) == text
  tok2 = tok_lib.build_tokenizer(cfg, corpus)
  assert tok_lib.SP_TRAIN_CALLS[0] == calls + 1     # no retraining
  assert os.stat(path).st_mtime_ns == mtime
  assert tok2.model_sha256 == tok.model_sha256
  # Whole-corpus encoding: each document followed by EOS.
  docs = corpus.documents()[:3]
  stream = tok.encode_documents(docs)
  assert int((stream == tok.eos_id).sum()) == len(docs)
  pieces = np.split(stream, np.flatnonzero(stream == tok.eos_id) + 1)[:-1]
  assert [tok.decode(p[:-1]) for p in pieces] == docs


def test_sentencepiece_with_byte_fallback_round_trips_unicode(small_corpus):
  corpus, cache = small_corpus
  cfg = DataConfig(tokenizer="sentencepiece", sp_vocab_size=512,
                   cache_dir=cache)
  tok = tok_lib.build_tokenizer(cfg, corpus)
  rng = np.random.default_rng(1)
  for _ in range(20):
    s = _random_unicode(rng, 50) + "\n\tdef f(x):\n        return x  # é"
    assert tok.decode(tok.encode(s)) == s


def test_sp_model_path_and_workdir_round_trip(small_corpus, tmp_path):
  corpus, cache = small_corpus
  trained = tok_lib.build_tokenizer(
      DataConfig(tokenizer="sentencepiece", sp_vocab_size=200, cache_dir=cache),
      corpus)
  calls = tok_lib.SP_TRAIN_CALLS[0]
  tok = tok_lib.build_tokenizer(
      DataConfig(tokenizer="sentencepiece", sp_model_path=trained.model_path),
      None)
  assert tok_lib.SP_TRAIN_CALLS[0] == calls
  assert tok.model_sha256 == trained.model_sha256
  workdir = str(tmp_path / "run")
  tok_lib.save_tokenizer(tok, workdir)
  meta = json.loads((tmp_path / "run" / "tokenizer.json").read_text())
  assert meta == tok.metadata()
  # The copy in the workdir is found even when the original path is gone.
  meta_moved = dict(meta, model_path=str(tmp_path / "nonexistent.model"))
  again = tok_lib.tokenizer_from_metadata(meta_moved, workdir)
  text = corpus.documents()[0][:500]
  assert again.encode(text) == tok.encode(text)
  assert tok_lib.load_tokenizer(workdir).metadata()["model_sha256"] == \
      tok.model_sha256
  with pytest.raises(DataError):
    tok_lib.tokenizer_from_metadata(dict(meta_moved, model_sha256="0" * 64),
                                    workdir)
  with pytest.raises(DataError):
    tok_lib.tokenizer_from_metadata(meta_moved, str(tmp_path / "empty"))


def test_byte_tokenizer_save_load(tmp_path):
  tok_lib.save_tokenizer(tok_lib.ByteTokenizer(), str(tmp_path))
  tok = tok_lib.load_tokenizer(str(tmp_path))
  assert isinstance(tok, tok_lib.ByteTokenizer)
  with pytest.raises(DataError):
    tok_lib.load_tokenizer(str(tmp_path / "missing"))
  with pytest.raises(DataError):
    tok_lib.tokenizer_from_metadata({"type": "wordpiece"})


def test_missing_sp_model_is_a_one_line_error(tmp_path):
  pytest.importorskip("sentencepiece")
  with pytest.raises(DataError) as e:
    tok_lib.build_tokenizer(DataConfig(
        tokenizer="sentencepiece", sp_model_path=str(tmp_path / "x.model")),
                            None)
  assert "\n" not in str(e.value)
