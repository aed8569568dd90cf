"""Scoring the fixed eval set: mean NLL, its standard error, eval FLOPs.

Rows come from ``Dataset.eval_set(train.eval_tokens)`` (``lm.data.eval_set``):
the same token ids for every run with the same data config. They are scored
in batches of ``train.eval_batch_size`` rows, independent of the training
batch size; the last batch is padded with zero rows whose results are
dropped, so the mean is exact. Process p of P holds and feeds only rows
[p*Be/P, (p+1)*Be/P) of every eval batch; the per-row NLL sums come back
replicated (a global all-gather), and the reduction below runs in float64 on
the host, in row order, identically on every process.

Mean: L = sum over rows of S_i / (n T), S_i the summed NLL of row i's T target
tokens (nats/token).

Standard error (``eval_loss_se``): per-document, cluster-robust. Rows of one
document share its topic and style, so their losses are correlated, and the
split draws whole documents (``lm.data.split``): documents are the
independent units. With G documents, S_g and n_g the NLL sum and target
tokens of document g's rows,
  SE^2 = G / (G - 1) * sum_g (S_g - L n_g)^2 / (n T)^2
(the CR1 cluster-robust variance of a mean, K = 1 regressor; Cameron &
Miller 2015, "A Practitioner's Guide to Cluster-Robust Inference", Sec. II.C). It reduces
to the per-sequence SE when every row is its own document. The per-sequence
SE, std(S_i / T) / sqrt(n), is reported alongside (``se_per_sequence``).
Both measure how L would move on another draw of held-out documents; every
run of a sweep shares this draw, so differences between runs are less noisy.

Eval FLOPs (``eval_flops``, NOT part of C): forward pass only,
F / 3 per token (F: training FLOPs per token under ``train.flop_convention``;
backward = 2 x forward, Kaplan et al. 2020, Sec. 2.1), times every row
computed including padding: eval_flops = F / 3 * n_batches * Be * T per eval.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any, Dict

import numpy as np

from lm import step as step_lib
from lm.data.corpus import DataError
from lm.data.eval_set import EvalSet
from lm.data.dataset import local_rows
from lm.data.pipeline import check_max_epochs, epochs_of

_LOG = logging.getLogger(__name__)

SE_RULE = ("per-document cluster-robust (CR1) standard error of the mean NLL, "
           "document = the validation document of each row's first target "
           "token (Cameron & Miller 2015, Sec. II.C)")
FLOPS_RULE = ("forward only: F/3 per token under train.flop_convention "
              "(Kaplan et al. 2020, Sec. 2.1), padding rows included")


@dataclasses.dataclass(frozen=True)
class EvalResult:
  loss: float                 # mean NLL, nats per target token
  se: float                   # per-document standard error of ``loss``
  se_per_sequence: float      # per-row standard error (for comparison)
  n_tokens: int
  n_rows: int
  n_documents: int
  flops: float                # forward FLOPs this evaluation spent


def summarize(row_nll: np.ndarray, seq_len: int,
              doc_index: np.ndarray) -> Dict[str, float]:
  """Mean, per-document SE and per-sequence SE from per-row NLL sums."""
  S_i = np.asarray(row_nll, np.float64)
  n = len(S_i)
  n_tok = n * seq_len
  L = float(S_i.sum() / n_tok)
  _, doc = np.unique(np.asarray(doc_index), return_inverse=True)
  S_g = np.bincount(doc, weights=S_i)
  n_g = np.bincount(doc) * float(seq_len)
  G = len(S_g)
  se_doc = (math.sqrt(G / (G - 1) * float(np.sum((S_g - L * n_g) ** 2)))
            / n_tok) if G > 1 else float("nan")
  se_seq = (float(np.std(S_i / seq_len, ddof=1)) / math.sqrt(n)
            if n > 1 else float("nan"))
  return {"loss": L, "se": se_doc, "se_per_sequence": se_seq,
          "n_documents": G}


class Evaluator:
  """Scores ``eval_set`` with the compiled eval step (module docstring)."""

  def __init__(self, compiled: step_lib.Compiled, eval_set: EvalSet,
               batch_size: int, *, flops_per_token: float,
               process_index: int = 0, process_count: int = 1):
    n, row = eval_set.rows.shape
    # No batch larger than the set (rounded up to a multiple of P).
    Be = min(batch_size, -(-n // process_count) * process_count)
    local = local_rows(Be, process_index, process_count)
    n_batches = -(-n // Be)
    padded = np.zeros((n_batches * Be, row), np.int32)
    padded[:n] = eval_set.rows
    self._fn, sh = compiled.eval_fn(Be)
    self._batches = step_lib.device_put_batch(
        padded.reshape(n_batches, Be, row)[:, local], sh,
        (n_batches, Be, row))
    self.eval_set, self.batch_size, self.n_batches = eval_set, Be, n_batches
    self.flops_per_eval = flops_per_token / 3.0 * n_batches * Be * (row - 1)

  def __call__(self, params) -> EvalResult:
    out = self._fn(params, self._batches)
    # Replicated: every process holds all rows in its first shard.
    row_nll = np.asarray(out.addressable_shards[0].data).reshape(-1)
    es = self.eval_set
    s = summarize(row_nll[:es.n_rows], es.rows.shape[1] - 1, es.doc_index)
    return EvalResult(loss=s["loss"], se=s["se"],
                      se_per_sequence=s["se_per_sequence"],
                      n_tokens=es.n_tokens, n_rows=es.n_rows,
                      n_documents=int(s["n_documents"]),
                      flops=self.flops_per_eval)

  def metadata(self) -> Dict[str, Any]:
    """run.json ``eval``: how the eval set was chosen and scored."""
    return {**self.eval_set.metadata(), "batch_size": self.batch_size,
            "n_batches": self.n_batches, "se_rule": SE_RULE,
            "flops_rule": FLOPS_RULE, "flops_per_eval": self.flops_per_eval}


# ------------------------------------------- run.json data fields and checks


def check_data(dataset, train_cfg, seq_len: int, process_count: int
               ) -> EvalSet:
  """Refuses a run before training (one-line errors): more epochs than
  ``train.max_epochs``, an eval batch that processes cannot split, or an eval
  set larger than the validation split. Returns the eval set."""
  if train_cfg.eval_batch_size % process_count:
    raise DataError(f"train.eval_batch_size={train_cfg.eval_batch_size} must "
                    f"be divisible by the number of processes {process_count}")
  D = train_cfg.steps * train_cfg.batch_size * seq_len
  if train_cfg.max_epochs and dataset.unique_train_tokens is None:
    _LOG.warning("train.max_epochs=%g not checked: the number of unique "
                 "training tokens is unknown without the token cache",
                 train_cfg.max_epochs)
  check_max_epochs(D, dataset.unique_train_tokens, train_cfg.max_epochs)
  return dataset.eval_set(train_cfg.eval_tokens)


def data_fields(dataset, eval_set: EvalSet, tokens: int) -> Dict[str, Any]:
  """run.json keys: unique_train_tokens, epochs, eval_tokens, eval_sha256."""
  unique = dataset.unique_train_tokens
  return {"unique_train_tokens": unique, "epochs": epochs_of(tokens, unique),
          "eval_tokens": eval_set.n_tokens, "eval_sha256": eval_set.sha256}
