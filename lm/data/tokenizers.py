"""Tokenizers: byte-level (default) and SentencePiece trained on the corpus.

Interface (``Tokenizer``): ``name``, ``vocab_size``, ``eos_id``,
``encode(str) -> list[int]``, ``decode(ids) -> str``, ``metadata() -> dict``,
``encode_pieces(texts) -> list[np.ndarray]`` (one id array per text, str or
UTF-8 bytes) and ``encode_documents(docs) -> np.ndarray`` (documents each
followed by EOS). ``spec()`` is a picklable description from which
``from_spec`` rebuilds the tokenizer in a worker process (lm.data.token_cache).

Byte tokenizer: ids 0..255 are the UTF-8 bytes, 256 is EOS; vocab 257.

SentencePiece: trained with ``model_type='unigram'`` on the lines of the
corpus (identity normalisation, whitespace kept, newline a user-defined
piece, byte fallback when ``vocab_size >= 512``; smaller vocabularies cannot
afford the 256 byte pieces, so characters unseen in training decode as
'\u2047'). Trained models are cached as
``<cache_dir>/sp-<corpus sha256[:16]>-v<vocab>-<model type>.model``.

Rebuilding a tokenizer later (sampling): ``save_tokenizer(tok, workdir)``
writes ``workdir/tokenizer.json`` (the metadata) and, for SentencePiece, a copy
of the model as ``workdir/tokenizer.model``; ``load_tokenizer(workdir)``
reads them back. ``tokenizer_from_metadata(meta, workdir=None)`` does the same
from run.json's metadata, looking for the model in ``workdir`` first and then
at ``meta['model_path']``; the model's sha256 is checked in both cases.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from typing import (Any, Dict, Iterable, Iterator, List, Optional, Sequence,
                    Tuple, Union)

import numpy as np

from lm.config import DataConfig
from lm.data.corpus import Corpus, DataError, atomic_write_bytes, resolve_cache_dir

_LOG = logging.getLogger(__name__)

SP_MODEL_TYPE = "unigram"
SP_BYTE_FALLBACK_MIN_VOCAB = 512
SP_MAX_TRAIN_LINES = 2_000_000
TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_MODEL = "tokenizer.model"
Text = Union[str, bytes]
# Number of SentencePiece trainings run in this process (tests check caching).
SP_TRAIN_CALLS = [0]


def _sentencepiece():
  try:
    import sentencepiece  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ImportError("data.tokenizer='sentencepiece' needs the sentencepiece "
                      "package: pip install 'scalinglm[sentencepiece]'") from None
  return sentencepiece


def _concat_with_eos(pieces: Sequence[np.ndarray], eos_id: int,
                     dtype: np.dtype) -> np.ndarray:
  """[p0, EOS, p1, EOS, ...] as one array, vectorised."""
  lengths = np.fromiter((len(p) for p in pieces), np.int64, len(pieces))
  out = np.empty(int(lengths.sum()) + len(pieces), dtype)
  ends = np.cumsum(lengths + 1) - 1          # EOS positions
  out[ends] = eos_id
  mask = np.ones(len(out), bool)
  mask[ends] = False
  if len(pieces):
    out[mask] = np.concatenate([np.asarray(p) for p in pieces])
  return out


def _as_str(text: Text) -> str:
  return text if isinstance(text, str) else text.decode("utf-8", "replace")


def _as_bytes(text: Text) -> bytes:
  return text.encode("utf-8") if isinstance(text, str) else bytes(text)


def token_dtype(vocab_size: int) -> np.dtype:
  return np.dtype(np.uint16 if vocab_size <= 65536 else np.int32)


class Tokenizer:
  """Common interface; see module docstring."""
  name: str = ""
  vocab_size: int = 0
  eos_id: int = 0

  def encode(self, text: str) -> List[int]:
    raise NotImplementedError

  def decode(self, ids: Iterable[int]) -> str:
    raise NotImplementedError

  def metadata(self) -> Dict[str, Any]:
    raise NotImplementedError

  def fingerprint(self) -> str:
    """Short id used in cache file names of token arrays."""
    raise NotImplementedError

  def spec(self) -> Tuple[str, Any]:
    raise NotImplementedError

  def encode_pieces(self, texts: Sequence[Text]) -> List[np.ndarray]:
    return [np.asarray(self.encode(_as_str(t)), np.int64) for t in texts]

  def encode_documents(self, docs: Sequence[Text]) -> np.ndarray:
    """All documents, each followed by ``eos_id``, as one 1-D array."""
    return _concat_with_eos(self.encode_pieces(docs), self.eos_id,
                            token_dtype(self.vocab_size))


class ByteTokenizer(Tokenizer):
  """UTF-8 bytes 0..255 plus EOS = 256."""
  name = "byte"
  vocab_size = 257
  eos_id = 256

  def encode(self, text: str) -> List[int]:
    return list(text.encode("utf-8"))

  def decode(self, ids: Iterable[int]) -> str:
    return bytes(int(i) for i in ids if 0 <= int(i) < 256).decode(
        "utf-8", errors="replace")

  def metadata(self) -> Dict[str, Any]:
    return {"type": "byte", "vocab_size": self.vocab_size,
            "eos_id": self.eos_id}

  def fingerprint(self) -> str:
    return "byte"

  def spec(self) -> Tuple[str, Any]:
    return ("byte", None)

  def encode_pieces(self, texts: Sequence[Text]) -> List[np.ndarray]:
    return [np.frombuffer(_as_bytes(t), np.uint8) for t in texts]


class SentencePieceTokenizer(Tokenizer):
  """A SentencePiece model file; EOS is the model's ``eos_id()``."""
  name = "sentencepiece"

  def __init__(self, model_path: str):
    spm = _sentencepiece()
    if not os.path.isfile(model_path):
      raise DataError(f"SentencePiece model {model_path!r} does not exist")
    with open(model_path, "rb") as f:
      self.model_bytes = f.read()
    self.sp = spm.SentencePieceProcessor(model_proto=self.model_bytes)
    self.model_path = os.path.abspath(model_path)
    self.model_sha256 = hashlib.sha256(self.model_bytes).hexdigest()
    self.vocab_size = int(self.sp.get_piece_size())
    self.eos_id = int(self.sp.eos_id())
    if self.eos_id < 0:
      raise DataError(f"SentencePiece model {model_path!r} has no EOS piece "
                      "(train it with eos_id >= 0)")

  def encode(self, text: str) -> List[int]:
    return self.sp.encode(text)

  def decode(self, ids: Iterable[int]) -> str:
    return self.sp.decode([int(i) for i in ids])

  def metadata(self) -> Dict[str, Any]:
    return {"type": "sentencepiece", "vocab_size": self.vocab_size,
            "eos_id": self.eos_id, "model_sha256": self.model_sha256,
            "model_path": self.model_path, "model_file": TOKENIZER_MODEL}

  def fingerprint(self) -> str:
    return "sp" + self.model_sha256[:16]

  def spec(self) -> Tuple[str, Any]:
    return ("sentencepiece", self.model_path)

  def encode_pieces(self, texts: Sequence[Text],
                    num_threads: int = 0) -> List[np.ndarray]:
    pieces: List[np.ndarray] = []
    threads = num_threads or max(1, os.cpu_count() or 1)
    for start in range(0, len(texts), 256):  # chunks bound the list-of-int memory
      chunk = [_as_str(t) for t in texts[start:start + 256]]
      ids = self.sp.encode(chunk, num_threads=threads)
      pieces.extend(np.asarray(x, np.int32) for x in ids)
    return pieces


def from_spec(spec: Tuple[str, Any]) -> Tokenizer:
  """The tokenizer ``Tokenizer.spec()`` describes (in a worker process)."""
  kind, arg = spec
  if kind == "byte":
    return ByteTokenizer()
  return SentencePieceTokenizer(arg)


def _training_lines(docs: Sequence[str]) -> Iterator[str]:
  n = 0
  for doc in docs:
    for line in doc.split("\n"):
      if line.strip():
        yield line
        n += 1
        if n >= SP_MAX_TRAIN_LINES:
          return


def sp_model_cache_path(corpus: Corpus, vocab_size: int, cache_dir: str = "",
                        model_type: str = SP_MODEL_TYPE) -> str:
  return os.path.join(
      resolve_cache_dir(cache_dir),
      f"sp-{corpus.sha256[:16]}-v{vocab_size}-{model_type}.model")


def train_sentencepiece(corpus: Corpus, vocab_size: int, cache_dir: str = "",
                        model_type: str = SP_MODEL_TYPE) -> str:
  """Path of a SentencePiece model for ``corpus``; trains it if not cached.

  Pass the TRAINING documents only (``lm.data.pipeline`` does): the
  tokenizer must not see validation text.
  """
  path = sp_model_cache_path(corpus, vocab_size, cache_dir, model_type)
  if os.path.isfile(path):
    return path
  spm = _sentencepiece()
  _LOG.info("training a %d-piece SentencePiece %s model on corpus %s",
            vocab_size, model_type, corpus.sha256[:16])
  SP_TRAIN_CALLS[0] += 1
  with tempfile.TemporaryDirectory() as tmp:
    prefix = os.path.join(tmp, "sp")
    try:
      spm.SentencePieceTrainer.train(
          sentence_iterator=_training_lines(corpus.documents()),
          model_prefix=prefix, vocab_size=vocab_size, model_type=model_type,
          character_coverage=1.0 if vocab_size < SP_BYTE_FALLBACK_MIN_VOCAB
          else 0.9995,
          byte_fallback=vocab_size >= SP_BYTE_FALLBACK_MIN_VOCAB,
          normalization_rule_name="identity", add_dummy_prefix=False,
          remove_extra_whitespaces=False, allow_whitespace_only_pieces=True,
          split_digits=True, user_defined_symbols=["\n"],
          hard_vocab_limit=False,  # small corpora get a smaller vocab
          input_sentence_size=SP_MAX_TRAIN_LINES, shuffle_input_sentence=True,
          num_threads=max(1, os.cpu_count() or 1), minloglevel=2)
    except RuntimeError as e:
      raise DataError(f"SentencePiece training failed (vocab {vocab_size}): "
                      f"{str(e).splitlines()[0]}") from None
    with open(prefix + ".model", "rb") as f:
      if not atomic_write_bytes(path, f.read()):
        # Cache dir not writable: keep the model next to nothing -> temp copy.
        fallback = tempfile.NamedTemporaryFile(suffix=".model", delete=False)
        shutil.copyfile(prefix + ".model", fallback.name)
        return fallback.name
  return path


def build_tokenizer(cfg: DataConfig, corpus: Optional[Corpus]) -> Tokenizer:
  """The tokenizer ``cfg`` asks for; SentencePiece trains on ``corpus`` (the
  training documents) unless ``cfg.sp_model_path`` names a model."""
  if cfg.tokenizer == "byte":
    return ByteTokenizer()
  if cfg.tokenizer != "sentencepiece":
    raise DataError(f"data.tokenizer must be byte or sentencepiece, got "
                    f"{cfg.tokenizer!r}")
  if cfg.sp_model_path:
    return SentencePieceTokenizer(os.path.expanduser(cfg.sp_model_path))
  if corpus is None:
    raise DataError("no corpus to train a SentencePiece model on; set "
                    "data.sp_model_path=<file.model>")
  return SentencePieceTokenizer(
      train_sentencepiece(corpus, cfg.sp_vocab_size, cfg.cache_dir))


def tokenizer_from_metadata(meta: Dict[str, Any],
                            workdir: Optional[str] = None) -> Tokenizer:
  """Rebuilds the tokenizer described by ``Tokenizer.metadata()``."""
  kind = meta.get("type")
  if kind == "byte":
    return ByteTokenizer()
  if kind != "sentencepiece":
    raise DataError(f"unknown tokenizer type {kind!r} in run metadata")
  candidates = []
  if workdir:
    candidates.append(os.path.join(workdir, meta.get("model_file",
                                                      TOKENIZER_MODEL)))
  if meta.get("model_path"):
    candidates.append(str(meta["model_path"]))
  for path in candidates:
    if os.path.isfile(path):
      tok = SentencePieceTokenizer(path)
      if meta.get("model_sha256") and tok.model_sha256 != meta["model_sha256"]:
        raise DataError(f"SentencePiece model {path!r} does not match the run "
                        "(sha256 differs)")
      return tok
  raise DataError("SentencePiece model not found (looked in "
                  f"{', '.join(candidates) or 'nowhere'}); copy it to "
                  f"<workdir>/{TOKENIZER_MODEL}")


def save_tokenizer(tok: Tokenizer, workdir: str) -> str:
  """Writes tokenizer.json (+ tokenizer.model) into ``workdir``; returns json path."""
  os.makedirs(workdir, exist_ok=True)
  if isinstance(tok, SentencePieceTokenizer):
    atomic_write_bytes(os.path.join(workdir, TOKENIZER_MODEL), tok.model_bytes)
  path = os.path.join(workdir, TOKENIZER_JSON)
  atomic_write_bytes(path, json.dumps(tok.metadata(), indent=2).encode("utf-8"))
  return path


def load_tokenizer(workdir: str) -> Tokenizer:
  """The tokenizer saved by ``save_tokenizer(tok, workdir)``."""
  path = os.path.join(workdir, TOKENIZER_JSON)
  if not os.path.isfile(path):
    raise DataError(f"{path} not found; was the run written by this version?")
  with open(path) as f:
    return tokenizer_from_metadata(json.load(f), workdir)
