"""Data layer: corpora, document splits, tokenizers, the token cache, packing
and resumable iterators, and the fixed eval set.

Entry point: ``build_dataset(cfg.data, batch_size=B, seed=s,
process_index=p, process_count=P)``; ``count_train_tokens(cfg.data)`` counts
unique training tokens without training. See ``pipeline.py`` for packing and
iterator semantics, ``split.py`` for the validation split, ``token_cache.py``
for the on-disk cache and its manifest, ``eval_set.py`` for the eval rows,
``corpus.py`` / ``sources.py`` / ``tfds_source.py`` for sources and
``tokenizers.py`` for tokenizers and how to rebuild one from a run directory.
"""
from lm.data.corpus import Corpus
from lm.data.corpus import DataError
from lm.data.corpus import files_corpus
from lm.data.corpus import resolve_cache_dir
from lm.data.corpus import stdlib_corpus
from lm.data.dataset import Dataset
from lm.data.dataset import local_rows
from lm.data.eval_set import EvalSet
from lm.data.pipeline import ArrayDataset
from lm.data.pipeline import ArrayTrainIterator
from lm.data.pipeline import build_dataset
from lm.data.pipeline import clear_memo
from lm.data.pipeline import count_train_tokens
from lm.data.pipeline import pack
from lm.data.sources import load_corpus
from lm.data.token_cache import TokenStream
from lm.data.tokenizers import build_tokenizer
from lm.data.tokenizers import ByteTokenizer
from lm.data.tokenizers import load_tokenizer
from lm.data.tokenizers import save_tokenizer
from lm.data.tokenizers import SentencePieceTokenizer
from lm.data.tokenizers import Tokenizer
from lm.data.tokenizers import tokenizer_from_metadata
