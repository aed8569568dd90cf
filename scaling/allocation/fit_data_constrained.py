r"""Command line: fit the data-constrained law to runs that repeat data.

  python -m scaling.allocation.fit_data_constrained --input=DIR/results.jsonl \
      --out=/tmp/dc_law.json [--base_law=chinchilla | --base_fit=fit.json]
  python -m scaling.allocate --law=/tmp/dc_law.json --C=1e12 --unique_tokens=2e6

The ledger's ``epochs`` (D / unique tokens) gives each run's U; a .csv needs
N, D, loss and U (or unique_tokens, or epochs). Without a base, E, A, B,
alpha and beta are fitted to the runs with epochs <= 1 (see
:mod:`scaling.allocation.dc_fit`).
"""
from __future__ import annotations

from absl import flags

from lm import cli
from scaling.allocation import dc_fit, laws
from scaling.allocation.errors import AllocationError

_INPUT = flags.DEFINE_string("input", None, "ledger .jsonl or .csv")
_OUT = flags.DEFINE_string("out", None, "law .json to write (atomic)")
_BASE_LAW = flags.DEFINE_string("base_law", None, "published law for E, A, "
                                "B, alpha, beta (e.g. chinchilla)")
_BASE_FIT = flags.DEFINE_string("base_fit", None, "fit.json whose Approach 3 "
                                "gives E, A, B, alpha, beta")


def main(argv):
  if len(argv) > 1:
    raise AllocationError(f"unexpected arguments {argv[1:]}")
  if not _INPUT.value:
    raise AllocationError("--input=<ledger .jsonl or .csv> is required")
  if _BASE_LAW.value and _BASE_FIT.value:
    raise AllocationError("give at most one of --base_law and --base_fit")
  base = None
  if _BASE_LAW.value:
    base = laws.published(_BASE_LAW.value)
  elif _BASE_FIT.value:
    base = laws.from_fit(_BASE_FIT.value, "approach3", need_loss=True)
  fit = dc_fit.fit_data_constrained(dc_fit.load_runs(_INPUT.value), base)
  d = fit.to_dict()
  p = d["parameters"]
  print(f"data-constrained law ({d['n_points']} runs, {d['n_repeated']} "
        f"repeating data, {d['n_excess_params']} with excess parameters): "
        + ", ".join(f"{k}={v:.6g}" for k, v in p.items())
        + f"; rmse(log L)={d['rmse_log']:.3g}")
  if not fit.R_N_identified:
    print("note: no run has N above the Chinchilla-optimal N for its unique "
          "tokens: R_N* is Muennighoff et al. 2023's published value")
  print(f"  {d['procedure']}")
  if _OUT.value:
    print(f"wrote {dc_fit.write(fit, _OUT.value)}")
  return 0


if __name__ == "__main__":
  cli.run(main)
