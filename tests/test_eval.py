"""The fixed eval set and its scoring: the same token ids for every run, an
exact mean on any eval batch size, mesh and process count, a calibrated SE."""
import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from lm.config import DataConfig
from lm.data import eval_set as eval_lib
from lm.data import pipeline
from lm.data.corpus import DataError
from lm.evaluate import summarize
from tests.conftest import ROOT
from tests.helpers import sharded_eval


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
  return DataConfig(seq_len=32, max_corpus_bytes=1_000_000,
                    cache_dir=str(tmp_path_factory.mktemp("cache")))


def test_eval_set_is_independent_of_batch_size_seed_and_processes(cfg):
  a = pipeline.build_dataset(cfg, batch_size=4, seed=0)
  b = pipeline.build_dataset(cfg, batch_size=16, seed=5, process_index=1,
                             process_count=2)
  ea, eb = a.eval_set(4096), b.eval_set(4096)
  assert ea.sha256 == eb.sha256 and len(ea.sha256) == 64
  np.testing.assert_array_equal(ea.rows, eb.rows)
  assert ea.rows.shape == (128, 33) and ea.rows.dtype == np.int32
  assert ea.n_tokens == 4096
  # The rows are validation rows spread over the whole split.
  val_rows = pipeline.pack(a.val.tokens, 32)
  idx = eval_lib.spread_indices(len(val_rows), 128)
  np.testing.assert_array_equal(ea.rows, val_rows[idx])
  assert idx[0] < len(val_rows) / 128 and idx[-1] >= len(val_rows) * 127 / 128
  # Each row's document holds its first target token.
  off = a.val.doc_offsets
  starts = idx * 33 + 1
  assert np.all((off[ea.doc_index] <= starts) & (starts < off[ea.doc_index + 1]))
  assert ea.n_documents == len(np.unique(ea.doc_index)) > 1
  assert a.eval_set(2048).sha256 != ea.sha256
  with pytest.raises(DataError, match="data.val_fraction") as e:
    a.eval_set(10**7)
  assert "\n" not in str(e.value)


@pytest.mark.parametrize("n_available,n", [(10, 10), (1000, 7), (9728, 4096),
                                           (5, 1)])
def test_spread_indices_are_distinct_and_evenly_spaced(n_available, n):
  idx = eval_lib.spread_indices(n_available, n)
  assert len(set(idx.tolist())) == n and np.all(np.diff(idx) > 0)
  assert 0 <= idx[0] and idx[-1] < n_available
  step = n_available / n
  assert np.all(np.abs(idx - (np.arange(n) + 0.5) * step) <= 1)


def test_standard_error_on_constructed_cases():
  T = 8
  # One row per document: per-document = per-sequence = textbook SE.
  means = np.array([1.0, 2.0, 4.0, 3.0, 5.0])
  s = summarize(means * T, T, np.arange(5))
  textbook = np.std(means, ddof=1) / np.sqrt(5)
  assert s["loss"] == pytest.approx(3.0)
  assert s["se"] == pytest.approx(textbook) == s["se_per_sequence"]
  # Balanced documents of identical rows: SE = std(document means)/sqrt(G)
  # with G = 3 documents, although there are 12 rows.
  doc_means = np.array([1.0, 2.0, 6.0])
  s = summarize(np.repeat(doc_means, 4) * T, T, np.repeat(np.arange(3), 4))
  assert s["se"] == pytest.approx(np.std(doc_means, ddof=1) / np.sqrt(3))
  assert s["se_per_sequence"] < 0.6 * s["se"]  # rows are not independent
  assert s["n_documents"] == 3
  assert np.isnan(summarize(np.ones(4), T, np.zeros(4))["se"])  # one document


def test_standard_error_matches_the_spread_of_repeated_draws():
  """Documents with random effects and sizes: the per-document SE matches
  the standard deviation of L over repeated draws; per-sequence SE does not."""
  rng = np.random.default_rng(0)
  T, G, draws = 10, 40, 1000
  L, se, se_seq = [], [], []
  for _ in range(draws):
    sizes = rng.integers(1, 21, G)
    doc = np.repeat(np.arange(G), sizes)
    row_mean = 2.0 + rng.normal(0, 0.3, G)[doc] + rng.normal(0, 0.5, len(doc))
    s = summarize(row_mean * T, T, doc)
    L.append(s["loss"])
    se.append(s["se"])
    se_seq.append(s["se_per_sequence"])
  spread = np.std(L)
  assert np.sqrt(np.mean(np.square(se))) == pytest.approx(spread, rel=0.1)
  assert np.sqrt(np.mean(np.square(se_seq))) < 0.7 * spread


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_eval_is_exact_for_any_batch_size_mesh_and_process_count():
  """One device, batches of 7 (padded) == a (2, 2, 2) mesh over 2 processes
  x 4 devices, batches of 24 (padded; each process feeds 12 rows of each) ==
  the training loss function on all 100 rows at once."""
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=4")
  port = _free_port()
  procs = [subprocess.Popen(
      [sys.executable, "-m", "tests.helpers.sharded_eval", str(p), str(port)],
      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True) for p in range(2)]
  one = sharded_eval.result((1, 1, 1), jax.devices()[:1], 7)
  outs = [p.communicate(timeout=600) for p in procs]
  for p, (out, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  multi = [json.loads(next(l for l in out.splitlines()
                          if l.startswith("RESULT "))[7:]) for out, _ in outs]
  for r in multi:
    assert r["loss"] == pytest.approx(one["loss"], rel=1e-6)
    assert r["se"] == pytest.approx(one["se"], rel=1e-4)
  assert multi[0] == multi[1]               # every process reduces the same
  assert 0 < one["se"] < one["se_seq"] * 3
  # Eval FLOPs count padding: 15 batches x 7 rows x 16 tokens x F/3 (F = 3).
  assert one["flops"] == 15 * 7 * 16 and multi[0]["flops"] == 5 * 24 * 16
  # The same mean from the training loss path (lm.model.cross_entropy).
  from lm import sharding, step as step_lib
  from lm.config import DEFAULT_RULES, MeshConfig, ModelConfig
  mc = ModelConfig(vocab_size=sharded_eval.V, d_model=32, n_layers=1,
                   n_heads=4, d_ff=64, max_seq_len=sharded_eval.T).validate()
  c = step_lib.compiled_for(
      mc, step_lib.StepOptions(),
      sharding.make_mesh(MeshConfig(shape=(1, 1, 1)), jax.devices()[:1]),
      DEFAULT_RULES)
  rng = np.random.default_rng(0)
  rows = rng.integers(0, sharded_eval.V, (100, 17)).astype(np.int32)
  rows[::3] = rows[0]
  _, nll = jax.jit(c._loss)(c.init(jax.random.key(0)).params, rows)  # pylint: disable=protected-access
  assert float(nll) == pytest.approx(one["loss"], rel=1e-5)
