"""The sweep's exact F(N) (training FLOPs per token) for the analysis.

``scaling`` does not import ``lm``; this builds F(N) = N x F(s) / N(s) with s
the planner's shape for N (``lm.params.shape_for_params`` with the sweep's
shape rule) and F(s) from ``lm.flops.flops_per_token`` under the sweep's
FLOP convention, and hands it to ``scaling.report.analysis.run_fit``. It is used only
if it reproduces every finished run's own C / D (to 1e-6): a trained
SentencePiece vocabulary smaller than ``data.sp_vocab_size`` changes the
shapes, and then the runs' own F (interpolated by ``scaling.numerics.token_flops``)
is used instead, with a warning.
"""
from __future__ import annotations

import warnings
from typing import Any, Dict, Optional

import numpy as np
from experiments import shape_search
from lm import flops as flops_lib
from lm import params as params_lib
from scaling.numerics.token_flops import TokenFlops
from lm.config.config_dict import ConfigDict

_MATCH_RTOL = 1e-6


def planner_flops_per_token(config: Dict[str, Any], max_N: float):
  """F(N) from a sweep.json ``config`` dict (sweep + lm sections).

  Every shape of the planner's rule up to ``max_N`` is enumerated once; F is
  the log-log interpolation through their exact (N, F) (``lm.flops`` under
  the sweep's convention), so it is exact at every shape the planner can
  produce, continuous in between, and F/N is held beyond the ends. Returns
  a ``scaling.numerics.token_flops.TokenFlops``.
  """
  cfg = ConfigDict(config)
  s = cfg.sweep
  T, conv, pconv = int(s.seq_len), s.flop_convention, s.param_convention
  shapes = params_lib.enumerate_shapes(
      vocab_size=shape_search.vocab_size_of(cfg.lm.data), seq_len=T,
      max_params=float(max_N), convention=pconv, head_dim=int(s.head_dim),
      ff_multiple=int(s.ff_multiple),
      **shape_search.shape_kwargs(cfg.lm))
  n = np.array([params_lib.n_params(m, pconv) for m in shapes], np.float64)
  F = np.array([flops_lib.flops_per_token(m, T, conv) for m in shapes])
  return TokenFlops.from_points(n, F, (
      f"F(N) of the planner's shapes (lm.flops {conv}, N as {pconv}, T={T}), "
      f"log-log interpolated over {n.size} shapes; F/N held beyond them"))


def sweep_flops_per_token(meta: Dict[str, Any], runs) -> Optional[Any]:
  """The planner's F if it reproduces every run's C / D, else None (warned)."""
  config = meta.get("config")
  if not config or "sweep" not in config or "lm" not in config:
    return None
  try:
    F = planner_flops_per_token(config, 1e4 * float(np.max(runs.N)))
    got = F(runs.N)
  except Exception as e:  # pylint: disable=broad-except
    warnings.warn(f"analysis: the sweep's F(N) could not be built ({e}); "
                  "using the runs' own C / D.")
    return None
  rel = np.abs(got / (runs.C / runs.D) - 1.0)
  if not np.all(rel < _MATCH_RTOL):
    warnings.warn(
        "analysis: the planner's F(N) differs from the runs' own C / D by up "
        f"to {rel.max():.2e} (e.g. a trained vocabulary smaller than planned); "
        "using the runs' own C / D, interpolated.")
    return None
  return F
