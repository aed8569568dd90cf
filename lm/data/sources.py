"""What a dataset is tokenized from: a training and a validation ``DocSource``.

``sources_for(cfg)`` resolves a data config into the two sides of its split
(``lm.data.split``) plus the text the SentencePiece trainer may see (training
documents only), without reading or tokenizing anything that is already
cached. In-memory corpora are resolved here; tfds in ``tfds_source``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import os
from typing import Any, Dict, Optional

from lm.config import DataConfig
from lm.data import corpus as corpus_lib
from lm.data import split as split_lib
from lm.data import tokenizers as tok_lib
from lm.data.corpus import Corpus, DataError
from lm.data.token_cache import DocSource, ListSource


@dataclasses.dataclass
class Sources:
  """The two sides of a split and what the tokenizer trains on.

  Attributes:
    train, val: token-cache sources of the training / validation documents.
    sp_corpus: the training text for SentencePiece (None: no text needed).
    metadata: JSON-friendly ``corpus`` and ``split`` descriptions (run.json).
  """
  train: DocSource
  val: DocSource
  sp_corpus: Optional[Corpus]
  metadata: Dict[str, Any]


def load_corpus(cfg: DataConfig) -> Corpus:
  if cfg.source == "default":
    return corpus_lib.stdlib_corpus(cfg.max_corpus_bytes, cfg.cache_dir)
  if cfg.source == "files":
    if not cfg.path:
      raise DataError("data.source='files' needs data.path=<file or dir>")
    return corpus_lib.files_corpus(cfg.path, cfg.max_corpus_bytes,
                                   cfg.cache_dir)
  raise DataError(f"data.source must be default, files or tfds, got "
                  f"{cfg.source!r}")


def _side(corpus: Corpus, split: split_lib.Split, side: str) -> ListSource:
  idx = split.train if side == "train" else split.val
  descriptor = {"kind": corpus.name, "corpus_sha256": corpus.sha256,
                "side": side, "split_rule": split.rule,
                "val_fraction": split.val_fraction,
                "split_sha256": split.sha256}
  return ListSource(
      f"{corpus.name}-{side}", descriptor,
      loader=lambda: [corpus.documents()[int(i)] for i in idx],
      n_documents=len(idx),
      text_bytes=int(sum(corpus.sizes[int(i)] for i in idx)))


def _train_corpus(corpus: Corpus, split: split_lib.Split) -> Corpus:
  """The training documents as a Corpus (the SentencePiece trainer's input)."""
  sha = hashlib.sha256(f"{corpus.sha256}:{split.sha256}".encode()).hexdigest()
  return Corpus(name=f"{corpus.name}-train", sha256=sha,
                metadata={"of": corpus.sha256, "split_sha256": split.sha256},
                loader=lambda: [corpus.documents()[int(i)]
                                for i in split.train])


# data.source names served by their own module, imported only when chosen
# (as experiments.runners does): tfds needs tensorflow-datasets and grain
# (heavy, optional: scalinglm[tfds]). The module gives sources_for(cfg) and,
# for streaming without the token cache, StreamingTfdsDataset.
SOURCE_MODULES: Dict[str, str] = {"tfds": "lm.data.tfds_source"}


def source_module(name: str):
  """The module serving data.source ``name`` (a key of SOURCE_MODULES)."""
  return importlib.import_module(SOURCE_MODULES[name])


def sources_for(cfg: DataConfig) -> Sources:
  """The train/val sources of ``cfg`` (tfds resolved by ``tfds_source``)."""
  if cfg.source == "tfds":
    return source_module(cfg.source).sources_for(cfg)
  corpus = load_corpus(cfg)
  split = split_lib.document_split(corpus.keys, corpus.sizes, cfg.val_fraction)
  return Sources(train=_side(corpus, split, "train"),
                 val=_side(corpus, split, "val"),
                 sp_corpus=_train_corpus(corpus, split),
                 metadata={"corpus": dict(corpus.metadata),
                           "split": split.metadata()})


def cached_tokenizer(cfg: DataConfig,
                     sources: Sources) -> Optional[tok_lib.Tokenizer]:
  """The tokenizer if it exists without training (byte, a given or cached
  SentencePiece model), else None."""
  if cfg.tokenizer != "sentencepiece" or cfg.sp_model_path:
    return tok_lib.build_tokenizer(cfg, None)
  if sources.sp_corpus is None:
    return None
  path = tok_lib.sp_model_cache_path(sources.sp_corpus, cfg.sp_vocab_size,
                                     cfg.cache_dir)
  return tok_lib.SentencePieceTokenizer(path) if os.path.isfile(path) else None
