"""scaling.allocate (issue 23): published numbers, the three invariants, the
data-constrained fit, intervals from fit.json replicates, bad inputs, and a
printed lm.train command that really trains."""
import json
import math
import os
import shlex

import numpy as np
import pytest
from absl import flags

from experiments import shape_search
from scaling.allocation import answer as answer_lib
from scaling.allocation import api
from scaling.allocation import chinchilla
from scaling.allocation import data_constrained as dc
from scaling.allocation import dc_fit
from scaling.allocation import inference
from scaling.allocation import laws
from scaling.io import loaders as data_lib
from scaling.report.analysis import run_fit
from tests.helpers.entry import run_entry
from tests.helpers.faults import one_line

ANCHORS = os.path.join(os.path.dirname(laws.__file__), "..", "datasets",
                       "anchors.json")
_MODULES = ("scaling.allocate", "scaling.allocation.fit_data_constrained")


def _drop_flags():
  fv = flags.FLAGS
  by_module = fv.flags_by_module_dict()
  for m in _MODULES:
    for f in list(by_module.get(m, [])):
      if f.name in fv:
        delattr(fv, f.name)


def _cli(capfd, module, *args):
  _drop_flags()
  try:
    return run_entry(capfd, module, *args)
  finally:
    _drop_flags()


# ---------------------------------------------------------- published numbers

def test_muennighoff_published_examples_to_1e9():
  # huggingface/datablations README: the first allocation is the better one.
  P = chinchilla.point(laws.published("muennighoff2023"))
  L1 = float(dc.loss(P, 6.34e9, 242e9, 25e9))
  L2 = float(dc.loss(P, 8.67e9, 178e9, 25e9))
  assert L1 == pytest.approx(2.2256440889984477, rel=1e-9)
  assert L2 == pytest.approx(2.2269634075087867, rel=1e-9)
  assert L1 < L2


def test_done_when_command_prints_the_published_value(capfd):
  rc, out, err = _cli(capfd, "scaling.allocate", "--law=muennighoff2023",
                      "--N=6.34e9", "--D=242e9", "--unique_tokens=25e9")
  assert rc == 0, err
  assert "= 2.2256440889984477" in out
  rc, out, _ = _cli(capfd, "scaling.allocate", "--law=muennighoff2023",
                    "--N=8.67e9", "--D=178e9", "--unique_tokens=25e9")
  assert rc == 0 and "= 2.2269634075087867" in out


@pytest.mark.parametrize("name,key", [("chinchilla", "hoffmann_rounded"),
                                      ("chinchilla_tex", "hoffmann_unrounded"),
                                      ("epoch", "epoch")])
def test_gopher_budget_matches_the_anchors(name, key):
  with open(ANCHORS) as f:
    ref = json.load(f)["besiroglu2024_epoch"]["compute_optimal_at_5.76e23"][key]
  ans = answer_lib.allocate(laws.published(name), C=5.76e23)["answer"]
  # anchors.json rounds to 3 significant digits.
  assert ans["N"]["value"] == pytest.approx(ref["N"], rel=6e-3)
  assert ans["D"]["value"] == pytest.approx(ref["D"], rel=6e-3)
  assert ans["tokens_per_param"]["value"] == pytest.approx(ref["D_over_N"],
                                                           rel=6e-3)


# --------------------------------------------------------------- invariants

LAWS = ("chinchilla", "epoch", "muennighoff2023")


@pytest.mark.parametrize("name", LAWS)
@pytest.mark.parametrize("C", [1e18, 5.76e23, 1e26])
def test_unlimited_unique_tokens_reproduce_chinchilla(name, C):
  law = laws.published(name).with_dc_defaults()
  P = chinchilla.point(law)
  chin = chinchilla.optimum(P, C)
  # The numeric search (no shortcut) finds Eq. 4's optimum ...
  num = dc.optimum(P, C, 1e40, numeric_only=True)
  assert float(num["N"]) == pytest.approx(float(chin["N"]), rel=1e-6)
  assert float(num["L"]) == pytest.approx(float(chin["L"]), rel=1e-12)
  # ... and the answer (exact where U >= D*) is Eq. 4's, for any U >= D*.
  for U in (1e40, float(chin["D"]) * (1 + 1e-9)):
    a = answer_lib.allocate(law, C=C, unique_tokens=U)["answer"]
    assert a["N"]["value"] == pytest.approx(float(chin["N"]), rel=1e-12)
    assert a["loss_given_up"]["value"] == pytest.approx(0.0, abs=1e-12)
  # Scarcer data: never better than unlimited, more epochs, continuous at D*.
  prev = None
  for f in (0.999, 0.5, 0.1, 0.01):
    r = dc.optimum(P, C, f * float(chin["D"]))
    assert float(r["loss_given_up"]) >= -1e-12
    assert float(r["epochs"]) > 1.0
    if prev is not None:
      assert float(r["L"]) >= prev - 1e-12
    prev = float(r["L"])
  near = dc.optimum(P, C, 0.999999 * float(chin["D"]))
  assert float(near["N"]) == pytest.approx(float(chin["N"]), rel=1e-3)


@pytest.mark.parametrize("name", LAWS)
@pytest.mark.parametrize("C", [1e20, 5.76e23])
def test_zero_inference_tokens_reproduce_chinchilla(name, C):
  P = chinchilla.point(laws.published(name))
  chin = chinchilla.optimum(P, C)       # Eq. 4 (scaling.approach3.law.frontier)
  r = inference.optimum(P, chin["L"], 0.0)
  assert float(r["N"]) == pytest.approx(float(chin["N"]), rel=1e-10)
  assert float(r["D"]) == pytest.approx(float(chin["D"]), rel=1e-9)
  assert float(r["C_total"]) == pytest.approx(C, rel=1e-9)
  # The derivative the bisection solves is zero at the Chinchilla N.
  h = inference._dcost(P, chin["L"], 0.0)  # pylint: disable=protected-access
  u = math.log(float(chin["N"]))
  assert abs(float(h(np.float64(u)))) < 1e-8 * 6 * float(chin["D"])
  # The numeric path with (almost) no inference converges to it too.
  tiny = inference.optimum(P, chin["L"], 1e-9)
  assert float(tiny["N"]) == pytest.approx(float(chin["N"]), rel=1e-8)
  # Through the CLI-level question: --C plus --inference_tokens=0.
  a = answer_lib.allocate(laws.published(name), C=C, inference_tokens=0.0)
  assert a["answer"]["N"]["value"] == pytest.approx(float(chin["N"]), rel=1e-10)


@pytest.mark.parametrize("name", LAWS)
def test_more_inference_tokens_never_increase_N(name):
  P = chinchilla.point(laws.published(name))
  target = float(chinchilla.optimum(P, 1e23)["L"])
  prev_N, prev_D = np.inf, 0.0
  for D_inf in [0.0] + list(np.geomspace(1e8, 1e17, 19)):
    r = inference.optimum(P, target, D_inf)
    N, D = float(r["N"]), float(r["D"])
    assert N <= prev_N * (1 + 1e-12) and D >= prev_D * (1 - 1e-12)
    assert float(r["saving"]) >= -1e-12
    assert float(chinchilla.loss(P, N, D)) == pytest.approx(target, rel=1e-12)
    prev_N, prev_D = N, D
  # The root is the global minimum of the total cost (dense grid).
  D_inf = 1e13
  r = inference.optimum(P, target, D_inf)
  N = np.geomspace(float(r["N"]) / 5, float(chinchilla.at_target_loss(
      P, target)["N"]) * 1.5, 200001)
  cost = inference.total_cost(N, chinchilla.d_train(P, N, target), D_inf)
  assert float(r["C_total"]) <= np.nanmin(cost) * (1 + 1e-9)


def test_data_constrained_optimum_beats_both_published_allocations():
  P = chinchilla.point(laws.published("muennighoff2023"))
  C = 6 * 6.34e9 * 242e9
  r = dc.optimum(P, C, 25e9)
  assert float(r["L"]) <= 2.2256440889984477
  assert float(r["C"]) == pytest.approx(C, rel=1e-12)


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize("args,needle", [
    (("--law=muennighoff2023", "--N=1e9", "--D=1e10", "--unique_tokens=2e10"),
     "unique_tokens U=2e+10 > D=1e+10"),
    (("--law=chinchilla", "--C=0"), "--C must be a positive"),
    (("--law=chinchilla", "--C=-1e20"), "--C must be a positive"),
    (("--law=chinchilla", "--target_loss=1.5", "--inference_tokens=1e12"),
     "at or below the law's irreducible loss"),
    (("--law=chinchilla", "--C=1e20", "--inference_tokens=-1"),
     "--inference_tokens must be a non-negative"),
    (("--law=nope", "--C=1e20"), "unknown --law 'nope'"),
    (("--law=chinchilla",), "nothing to answer"),
])
def test_bad_input_is_one_error_line(capfd, args, needle):
  rc, out, err = _cli(capfd, "scaling.allocate", *args)
  assert rc == 2
  assert needle in one_line(err)


# ------------------------------------------------- fit.json and replicates

TRUE = dict(E=1.8, A=400.0, B=2000.0, alpha=0.34, beta=0.36)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
  """fit.json of Approaches 2+3 on synthetic IsoFLOP runs of a known law (1 %
  noise, 40 bootstrap replicates), and a copy without Approach 3."""
  d = tmp_path_factory.mktemp("alloc")
  rng = np.random.default_rng(1)
  lines = ["N,D,C,loss,budget"]
  for C in (1e17, 1e18, 1e19, 1e20):
    Nc = float(chinchilla.optimum(TRUE, C)["N"])
    for N in Nc * np.geomspace(1 / 5, 5, 7):
      D = C / (6 * N)
      L = float(chinchilla.loss(TRUE, N, D)) * math.exp(rng.normal(0, 0.005))
      lines.append(f"{float(N)!r},{float(D)!r},{C!r},{L!r},{C!r}")
  csv = d / "runs.csv"
  csv.write_text("\n".join(lines) + "\n")
  res = run_fit(data_lib.load_runs(str(csv)), approaches=(2, 3),
                budgets=(1e18, 1e21), bootstrap=40, seed=0, plots=False,
                out_dir=str(d / "a23"))
  a2 = dict(res)
  del a2["approach3"]
  with open(d / "a2.json", "w") as f:
    json.dump(a2, f)
  return {"a23": (str(d / "a23" / "fit.json"), res),
          "a2": (str(d / "a2.json"), a2)}


def test_intervals_come_from_the_stored_replicates(fitted):
  path, res = fitted["a23"]
  law = laws.from_fit(path)
  assert law.replicates is not None and law.replicates["E"].size == 40
  for C in (1e18, 1e21):   # the fit's own budgets: the same draws
    row = res["approach3"]["compute_optimal"][f"{C:.3g}"]
    a = answer_lib.allocate(law, C=C)["answer"]
    assert a["N"]["value"] == pytest.approx(row["N_opt"], rel=1e-9)
    assert a["N"]["ci"] == pytest.approx(row["N_opt_ci"], rel=1e-9)
    assert a["L"]["ci"] == pytest.approx(row["loss_ci"], rel=1e-9)
  # Approach 2 (N*(C) only), same check.
  p2 = laws.from_fit(path, family="approach2")
  row = res["approach2"]["compute_optimal"]["1e+21"]
  a = answer_lib.allocate(p2, C=1e21)["answer"]
  assert a["N"]["value"] == pytest.approx(row["N_opt"], rel=1e-9)
  assert a["N"]["ci"] == pytest.approx(row["N_opt_ci"], rel=1e-9)
  # A data-constrained answer has intervals too, around its point.
  a = answer_lib.allocate(law, C=1e21, unique_tokens=1e9)["answer"]
  lo, hi = a["N"]["ci"]
  assert lo <= a["N"]["value"] <= hi


def test_fit_json_without_the_needed_family_is_one_error_line(capfd, fitted):
  path, _ = fitted["a2"]
  rc, out, err = _cli(capfd, "scaling.allocate", f"--fit={path}", "--C=1e21",
                      "--unique_tokens=1e9")
  assert rc == 2 and "has no approach3 fit" in one_line(err)
  rc, out, err = _cli(capfd, "scaling.allocate", f"--fit={path}", "--C=1e21")
  assert rc == 0, err                       # N*(C) from Approach 2 is fine
  assert "N (parameters)" in out


def test_json_is_atomic_and_never_through_a_symlink(capfd, tmp_path, fitted):
  path, _ = fitted["a23"]
  target = tmp_path / "real.json"
  target.write_text("keep me")
  link = tmp_path / "link.json"
  link.symlink_to(target)
  rc, _, err = _cli(capfd, "scaling.allocate", f"--fit={path}", "--C=1e20",
                    f"--json={link}")
  assert rc == 2 and "symbolic link" in one_line(err)
  assert target.read_text() == "keep me"
  out = tmp_path / "ans.json"
  rc, _, err = _cli(capfd, "scaling.allocate", f"--fit={path}", "--C=1e20",
                    "--inference_tokens=1e12", f"--json={out}")
  assert rc == 0, err
  d = json.loads(out.read_text())
  assert d["question"] == "inference"
  assert d["answer"]["N"]["ci"] is not None
  assert d["provenance"]["C_convention"].startswith("C = 6ND")
  assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
  png = tmp_path / "dc.png"
  rc, _, err = _cli(capfd, "scaling.allocate", f"--fit={path}", "--C=1e20",
                    "--unique_tokens=1e8", f"--plot={png}")
  assert rc == 0, err
  assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -------------------------------------------------- data-constrained fit

def _synthetic_dc(noise=0.0, seed=0):
  P = chinchilla.point(laws.published("muennighoff2023"))
  rows = [(N, D, D / r) for N in np.geomspace(1e7, 3e9, 5)
          for D in np.geomspace(1e9, 2e11, 4) for r in (1, 2, 5, 20, 60)]
  N, D, U = np.array(rows).T
  L = dc.loss(P, N, D, U) * np.exp(
      np.random.default_rng(seed).normal(0, noise, N.shape))
  return dc_fit.DCRuns(N=N, D=D, U=U, loss=L, source="synthetic")


def test_dc_fit_recovers_the_published_decay_constants():
  fit = dc_fit.fit_data_constrained(_synthetic_dc(),
                                    base=laws.published("muennighoff2023"))
  assert fit.R_N_identified and fit.n_repeated > 0
  assert fit.law.R_D_star == pytest.approx(15.387756, rel=1e-4)
  assert fit.law.R_N_star == pytest.approx(5.309743, rel=1e-4)


def test_dc_fit_cli_from_a_ledger_then_allocate(capfd, tmp_path):
  runs = _synthetic_dc(noise=0.005, seed=3)
  ledger = tmp_path / "results.jsonl"
  with open(ledger, "w") as f:
    for i, (N, D, U, L) in enumerate(zip(runs.N, runs.D, runs.U, runs.loss)):
      f.write(json.dumps(dict(schema_version=1, run_id=f"r{i}", budget=6 * N * D,
                              N=N, D=D, C=6 * N * D, eval_loss=L, status="ok",
                              epochs=D / U)) + "\n")
  out = tmp_path / "law.json"
  rc, o, err = _cli(capfd, "scaling.allocation.fit_data_constrained",
                    f"--input={ledger}", f"--out={out}",
                    "--base_law=muennighoff2023")
  assert rc == 0, err
  law = laws.from_law_file(str(out))
  assert law.R_D_star == pytest.approx(15.387756, rel=0.15)
  rc, o, err = _cli(capfd, "scaling.allocate", f"--law={out}", "--C=9.2e21",
                    "--unique_tokens=25e9")
  assert rc == 0, err and "epochs (D / U)" in o
  # A ledger that never repeats data cannot identify R_D*.
  with open(ledger, "w") as f:
    f.write(json.dumps(dict(schema_version=1, run_id="x", budget=1e18, N=1e8,
                            D=1e9, C=6e17, eval_loss=3.0, status="ok",
                            epochs=0.5)) + "\n")
  rc, _, err = _cli(capfd, "scaling.allocation.fit_data_constrained",
                    f"--input={ledger}", "--base_law=chinchilla")
  assert rc == 2 and "no run repeats data" in one_line(err)


# ------------------------------------------- --shape: a command that trains

def test_shape_prints_a_command_that_trains(capfd, tmp_path):
  sweep = "experiments/configs/tiny_sweep.py"
  work = str(tmp_path / "run")
  ans = api.run(law="chinchilla", C=1e9, shape=True, sweep_config=sweep,
                target="h100_sxm", workdir=work)
  rows = [r for r in ans["shapes"] if not r.get("skipped")]
  near = [r for r in rows if r.get("nearest")]
  assert len(near) == 1 and near[0]["train_command"].startswith(
      "python -m lm.train ")
  r = near[0]
  assert r["flops"] == pytest.approx(1e9, rel=0.01)   # spends C (6N) +-1 %
  assert r["fits"] is True and r["time_s"] > 0
  # The planner's rules, not ours: the same run experiments.isoflop plans.
  assert r["lr"] == shape_search.marin_lr(r["batch_size"],
                                          r["shape"]["d_model"],
                                          api.shape_lib.load_sweep_config(
                                              sweep).sweep)
  argv = shlex.split(r["train_command"])
  assert argv[:3] == ["python", "-m", "lm.train"]
  few = ["--config.train.steps=4", "--config.train.warmup_steps=1",
         "--config.train.steps_per_call=2", "--config.train.log_every=2",
         "--config.train.ckpt_every=4", "--config.train.eval_tokens=512"]
  rc, out, err = run_entry(capfd, "lm.train", *argv[3:], *few)
  assert rc == 0, err
  meta = json.loads(open(os.path.join(work, "run.json")).read())
  assert meta["params"]["total"] == r["N"]
  # The isoflop command plans (3 sizes around N*).
  iso = shlex.split(r["isoflop_command"])
  rc, out, err = run_entry(capfd, "experiments.isoflop", *iso[3:],
                           "--plan_only")
  assert rc == 0, err
