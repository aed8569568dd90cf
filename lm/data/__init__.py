"""Data layer: tokenizers, text sources, packing and resumable iterators.

Entry point: ``build_dataset(cfg.data, batch_size=B, seed=s,
process_index=p, process_count=P)``. See ``pipeline.py`` for packing/split
semantics, ``corpus.py`` for sources, ``tokenizers.py`` for tokenizers and how
to rebuild one from a run directory, ``tfds_source.py`` for tfds + grain.
"""
from lm.data.corpus import Corpus
from lm.data.corpus import DataError
from lm.data.corpus import files_corpus
from lm.data.corpus import resolve_cache_dir
from lm.data.corpus import stdlib_corpus
from lm.data.pipeline import ArrayDataset
from lm.data.pipeline import ArrayTrainIterator
from lm.data.pipeline import build_dataset
from lm.data.pipeline import clear_memo
from lm.data.pipeline import corpus_tokens
from lm.data.pipeline import Dataset
from lm.data.pipeline import load_corpus
from lm.data.pipeline import local_rows
from lm.data.pipeline import pack
from lm.data.pipeline import split_rows
from lm.data.tokenizers import build_tokenizer
from lm.data.tokenizers import ByteTokenizer
from lm.data.tokenizers import load_tokenizer
from lm.data.tokenizers import save_tokenizer
from lm.data.tokenizers import SentencePieceTokenizer
from lm.data.tokenizers import Tokenizer
from lm.data.tokenizers import tokenizer_from_metadata
