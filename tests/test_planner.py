"""Properties of the IsoFLOP planner (no training, no data)."""
import json
import math
import warnings

import numpy as np
import pytest

from experiments import planner
from experiments.configs import c4_small, quickstart, tiny_sweep
from lm import params as params_lib
from lm.config import ConfigError, ModelConfig, default_config_dict
from lm.config_dict import ConfigDict


def _cfg(**sweep):
  c = ConfigDict()
  c.name = "t"
  c.lm = default_config_dict(
      model=dict(mlp="swiglu", tie_embeddings=True),
      data=dict(source="default", tokenizer="byte", seq_len=64),
      train=dict(steps_per_call=100))
  base = dict(budgets=(1e11, 3e11), n_sizes=5, size_range=8.0, prior_k=0.5,
              min_steps=50)
  base.update(sweep)
  c.sweep = planner.default_sweep(**base)
  return c


def _model(run, cfg):
  m = cfg.lm.model
  vocab = planner.vocab_size_of(cfg.lm.data)
  return ModelConfig(vocab_size=vocab, max_seq_len=run.seq_len, mlp=m.mlp,
                     tie_embeddings=m.tie_embeddings, qk_norm=m.qk_norm,
                     **run.shape)


def _param_count(m, convention):
  """N from lm.params.count_params, which tests/test_params.py checks
  against the real model's parameter tree."""
  counts = params_lib.count_params(m)
  if convention == "total":
    return counts.total
  assert convention == "non_embedding"
  return counts.non_embedding


def _hand_counted_flops(m, r):
  """Training FLOPs of the run by the convention's published formula."""
  D = r.steps * r.batch_size * r.seq_len
  if r.flop_convention == "6N":            # Kaplan et al. 2020, Sec. 2.1
    return 6.0 * _param_count(m, "total") * D
  if r.flop_convention == "attention_inclusive":   # PaLM App. B
    proj = 4 * m.d_model * m.n_heads * (m.d_model // m.n_heads)
    mlp = (3 if m.mlp == "swiglu" else 2) * m.d_model * m.d_ff
    n_matmul = m.n_layers * (proj + mlp) + m.d_model * m.vocab_size
    attn = 12 * m.n_layers * m.d_model * r.seq_len
    return (6.0 * n_matmul + attn) * D
  raise AssertionError(f"no hand count for {r.flop_convention}")


ALL_CONFIGS = {"quickstart": quickstart.get_config,
               "c4_small": c4_small.get_config,
               "tiny_sweep": tiny_sweep.get_config,
               "synthetic": _cfg}


@pytest.mark.parametrize("name", sorted(ALL_CONFIGS))
def test_counted_flops_within_tolerance_and_shapes_valid(name):
  cfg = ALL_CONFIGS[name]()
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    plan = planner.make_plan(cfg)
  assert plan.runs
  for r in plan.runs:
    m = _model(r, cfg).validate()          # raises on an invalid shape
    assert m.d_model % m.n_heads == 0
    # Recounted by hand from the parameter count and the shape,
    # not through lm.flops (the code under test).
    C = _hand_counted_flops(m, r)
    assert abs(C / r.budget - 1) <= cfg.sweep.tolerance
    assert C == pytest.approx(r.flops, rel=1e-9)
    assert r.flops_error == pytest.approx(C / r.budget - 1, abs=1e-9)
    assert _param_count(m, r.param_convention) == r.N
    assert r.D == r.steps * r.batch_size * r.seq_len
    assert 0 <= r.warmup_steps < r.steps
    if r.trunk_id is None:    # a WSD branch may stop anywhere (traced)
      assert r.steps % r.steps_per_call == 0
    assert 0 < r.lr <= cfg.sweep.lr_max
    assert r.steps >= cfg.sweep.min_steps
  ids = [r.run_id for r in plan.runs]
  assert len(set(ids)) == len(ids)
  assert all(set(i) <= set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL"
                           "MNOPQRSTUVWXYZ_+-.") for i in ids)


def test_sizes_log_spaced_and_centred():
  cfg = _cfg()
  s = cfg.sweep
  for C in (1e11, 3e11):
    targets = planner.size_targets(planner.center_N(C, s), s.n_sizes,
                                   s.size_range)
    logs = [math.log(t) for t in targets]
    steps = [b - a for a, b in zip(logs, logs[1:])]
    assert max(steps) - min(steps) < 1e-9                 # log-spaced
    assert targets[-1] / targets[0] == pytest.approx(s.size_range)
    # Geometric centre = the prior 0.5 sqrt(C / 120) (Hoffmann 2022, Table 3).
    gmean = math.exp(sum(logs) / len(logs))
    assert gmean == pytest.approx(0.5 * math.sqrt(C / 120))
  plan = planner.make_plan(cfg)
  for C in (1e11, 3e11):
    Ns = [r.N for r in plan.runs if r.budget == C]
    assert Ns == sorted(Ns) and len(Ns) >= 3
    # Realised sizes (after snapping to the shape grid, whose width step of 8
    # is up to ~1.6x in N at these sizes): geometric centre within 1.6x.
    gmean = math.exp(sum(math.log(n) for n in Ns) / len(Ns))
    assert 1 / 1.6 < gmean / planner.center_N(C, cfg.sweep) < 1.6


def _fit_json(path, conventions=("6N", "total"), **entries):
  c, p = conventions
  path.write_text(json.dumps({
      "schema_version": 2, "conventions": {"flop_convention": c,
                                           "param_convention": p},
      **entries}))
  return str(path)


def test_fit_json_centre_moves_sizes(tmp_path):
  base = planner.make_plan(_cfg())
  fit = tmp_path / "fit.json"
  # Approach 2 only: N_opt = k_N C^a with 4x the prior at C = 1e11.
  k = 4 * 0.5 * math.sqrt(1e11 / 120) / (1e11 ** 0.5)
  _fit_json(fit, approach2={"k_N": k, "a": 0.5})
  cfg = _cfg(center=str(fit))
  assert planner.center_N(1e11, cfg.sweep) == pytest.approx(
      4 * planner.center_N(1e11, _cfg().sweep))
  moved = planner.make_plan(cfg)
  mean = lambda p: sum(math.log(r.N) for r in p.runs) / len(p.runs)
  assert mean(moved) > mean(base) + math.log(2)
  # Approach 3 takes precedence: N_opt = G (C/6)^a (Hoffmann 2022, Eq. 4);
  # alpha = beta and A = B give G = 1, a = 1/2: N_opt(6e10) = 1e5.
  _fit_json(fit, approach2={"k_N": k, "a": 0.5},
            approach3={"A": 400.0, "B": 400.0, "alpha": 0.3, "beta": 0.3})
  assert planner.center_N(6e10, cfg.sweep) == pytest.approx(1e5, rel=1e-9)
  _fit_json(fit, approach3={"A": None, "a": None})
  with pytest.raises(planner.PlanError, match="neither"):
    planner.center_N(1e11, cfg.sweep)


def test_fit_json_centre_of_another_convention_is_refused(tmp_path):
  fit = tmp_path / "fit.json"
  cfg = _cfg(center=_fit_json(fit, ("attention_inclusive", "total"),
                              approach2={"k_N": 1e-3, "a": 0.5}))
  with pytest.raises(planner.PlanError, match="counts C as 'attention_inclusive'"):
    planner.make_plan(cfg)
  _fit_json(fit, ("6N", "non_embedding"), approach2={"k_N": 1e-3, "a": 0.5})
  with pytest.raises(planner.PlanError, match="counts N as 'non_embedding'"):
    planner.center_N(1e11, cfg.sweep)
  fit.write_text(json.dumps({"approach2": {"k_N": 1e-3, "a": 0.5}}))  # v1
  with pytest.raises(planner.PlanError, match="does not record the FLOP"):
    planner.center_N(1e11, cfg.sweep)
  # scaling's built-in data say "6ND": the same C = 6ND convention as "6N".
  _fit_json(fit, ("6ND", None), approach2={"k_N": 1e-3, "a": 0.5})
  assert planner.center_N(1e10, cfg.sweep) == pytest.approx(1e-3 * 1e5)


def test_fit_json_centre_solves_the_sweeps_own_constraint(tmp_path):
  # attention_inclusive: F(N) > 6N, so Approach 3's N* solves min L subject
  # to F(N) D = C numerically, not Eq. 4; check it is the constrained
  # minimum under the planner's own F.
  from experiments.sweep_flops import planner_flops_per_token
  from scaling import parametric
  law = {"E": 1.8, "A": 400.0, "B": 900.0, "alpha": 0.34, "beta": 0.3}
  fit = _fit_json(tmp_path / "fit.json", ("attention_inclusive", "total"),
                  approach3=law)
  cfg = _cfg(center=fit, flop_convention="attention_inclusive")
  C = 1e11
  got = planner.center_N(C, cfg.sweep, planner_flops_per_token(
      {"sweep": cfg.sweep.to_dict(), "lm": cfg.lm.to_dict()}, 1e7))
  F = planner_flops_per_token({"sweep": cfg.sweep.to_dict(),
                               "lm": cfg.lm.to_dict()}, 1e7)
  N = got * np.exp(np.linspace(-0.5, 0.5, 2001))
  L = parametric.predict_loss(law, N, C / F(N))
  assert abs(np.log(N[np.argmin(L)] / got)) < 1e-3
  six = parametric.frontier(law["A"], law["B"], law["alpha"], law["beta"], C)
  assert abs(np.log(got / six["N_opt"])) > 0.01   # the convention matters
  assert planner.make_plan(cfg).centers[C] == pytest.approx(got, rel=1e-6)


def test_too_small_budget_is_a_one_line_error():
  with pytest.raises(planner.PlanError, match="too small") as e:
    planner.make_plan(_cfg(budgets=(1e5,)))
  assert "\n" not in str(e.value)
  with pytest.raises(planner.PlanError, match="too small"):
    planner.make_plan(_cfg(budgets=(1e5, 1e11)))


def test_few_sizes_warn_and_none_with_three_is_an_error():
  # At 1e9 FLOPs only d_model=8 runs >= 50 steps (d_model=16 gets 43.5): a
  # budget with 1-2 sizes warns and is kept; skipped sizes say why.
  with pytest.warns(UserWarning, match="usable sizes"):
    plan = planner.make_plan(_cfg(budgets=(1e9, 1e11), prior_k=2.0))
  small = [r for r in plan.runs if r.budget == 1e9]
  assert 1 <= len(small) < 3
  reasons = [s.reason for s in plan.skipped if s.budget == 1e9]
  assert any("min_steps" in r for r in reasons)
  assert any("no shape" in r for r in reasons)
  with pytest.raises(planner.PlanError, match="no budget has >= 3"):
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      planner.make_plan(_cfg(budgets=(1e9,), prior_k=2.0))


@pytest.mark.parametrize("field,value,match", [
    ("budgets", (1e11, -1.0), "budgets"),
    ("budgets", (1e11, float("nan")), "budgets"),
    ("budgets", (), "empty"),
    ("budgets", ("1e11x",), "numbers"),
    ("budgets", (1e11, 1e11), "duplicates"),
    ("flop_convention", "7N", "flop_convention"),
    ("param_convention", "some", "param_convention"),
    ("n_sizes", 2, "n_sizes"),
    ("n_sizes", 4.5, "n_sizes"),
    ("size_range", 1.0, "size_range"),
    ("batch_rule", "huge", "batch_rule"),
    ("lr_rule", "magic", "lr_rule"),
    ("tolerance", 0.0, "tolerance"),
    ("warmup_fraction", 1.5, "warmup_fraction"),
    ("center", "/nonexistent/fit.json", "cannot read"),
])
def test_bad_values_raise_one_line_plan_error(field, value, match):
  with pytest.raises(planner.PlanError, match=match) as e:
    planner.make_plan(_cfg(**{field: value}))
  assert "\n" not in str(e.value)


def test_unknown_sweep_field():
  with pytest.raises(planner.PlanError, match="unknown sweep field"):
    planner.default_sweep(n_size=5)


def test_config_hash_tracks_sweep_and_lm_fields(tmp_path):
  h = planner.config_hash(_cfg())
  assert h == planner.config_hash(_cfg())                  # deterministic
  assert h == planner.config_hash(_cfg(budgets=(100000000000, 3e11)))
  assert h != planner.config_hash(_cfg(n_sizes=6))
  assert h != planner.config_hash(_cfg(prior_k=0.51))
  c = _cfg()
  c.lm.train.weight_decay = 0.0
  assert planner.config_hash(c) != h
  c = _cfg()
  c.lm.train.steps_per_call = 10       # steps are aligned to it
  assert planner.config_hash(c) != h
  c = _cfg()
  c.lm.train.progress = False          # cosmetic: does not change results
  c.lm.train.log_every = 7
  c.sweep.est_flops_per_s = 1e12
  assert planner.config_hash(c) == h
  fit = tmp_path / "fit.json"
  _fit_json(fit, approach2={"k_N": 1e-3, "a": 0.5})
  h1 = planner.config_hash(_cfg(center=str(fit)))
  _fit_json(fit, approach2={"k_N": 2e-3, "a": 0.5})
  assert planner.config_hash(_cfg(center=str(fit))) != h1   # refit -> new hash


def test_lm_config_and_to_dict():
  cfg = _cfg()
  run = planner.make_plan(cfg).runs[0]
  lc = run.lm_config(cfg.lm)
  assert lc.model.d_model == run.shape["d_model"]
  assert lc.train.steps == run.steps and lc.train.lr == run.lr
  assert lc.train.flop_convention == "6N"
  assert "d_model" not in cfg.lm.model                     # base untouched
  from lm.config import from_config_dict
  full = from_config_dict(lc, vocab_size=257)              # validates
  assert full.model.n_heads == run.shape["n_heads"]
  d = run.to_dict()
  assert json.loads(json.dumps(d))["run_id"] == run.run_id


def test_marin_lr_values():
  # Marin recipe.py compute_learning_rate, worked by hand: 0.33 sqrt(B) / d,
  # clamped at lr_max = 0.01.
  s = planner.default_sweep(lr_rule="marin", lr_constant=0.33, lr_max=1e-2)
  assert planner.marin_lr(64, 512, s) == pytest.approx(0.33 * 8 / 512)
  assert planner.marin_lr(256, 1024, s) == pytest.approx(0.33 * 16 / 1024)
  assert planner.marin_lr(1024, 128, s) == 1e-2              # clamped
  fixed = planner.default_sweep(lr_rule="fixed", lr_constant=3e-3)
  assert planner.marin_lr(1024, 8, fixed) == 3e-3


def test_marin_batch_rule_properties():
  # Properties of Marin's candidate_configs batch rule on c4_small: B is a
  # power of two within bounds; at that B the lr is under the clamp unless B
  # is already the smallest allowed; doubling B would either exceed the
  # clamp or leave fewer steps than the target.
  cfg = c4_small.get_config()
  s = cfg.sweep
  plan = planner.make_plan(cfg)
  assert len({r.batch_size for r in plan.runs}) > 1       # the rule is active
  for r in plan.runs:
    B, d = r.batch_size, r.shape["d_model"]
    assert B & (B - 1) == 0 and s.min_batch_size <= B <= s.max_batch_size
    assert B == s.min_batch_size or 0.33 * math.sqrt(B) / d <= s.lr_max
    doubled_over_clamp = 0.33 * math.sqrt(2 * B) / d > s.lr_max
    assert (doubled_over_clamp or B == s.max_batch_size
            or r.steps / 2 < s.target_steps)


def test_aligned_steps():
  for exact in (99.6, 324.2, 1304.7, 13041.3):
    n, k = planner.aligned_steps(exact, 100, 0.005)
    assert n % k == 0 and abs(n / exact - 1) <= 0.005
    assert 50 <= k <= 100 or n == k <= 100


def _hms_seconds(text):
  h, m, s = (int(x) for x in text.split(":"))
  return 3600 * h + 60 * m + s


def test_format_plan_table():
  # At a given throughput every run takes D / (tokens/s) seconds; the table's
  # rows and its total must say so.
  cfg = quickstart.get_config()     # independent runs: time = D / rate
  cfg.sweep.scheme, cfg.lm.train.schedule = "independent", "cosine"
  plan = planner.make_plan(cfg)
  text = planner.format_plan(plan, tokens_per_s=lambda r: 1e5)
  lines = text.splitlines()
  rows = lines[2:2 + len(plan.runs)]
  for r, line in zip(plan.runs, rows):
    assert line.split()[0] == f"{r.budget:.3g}"
    assert abs(_hms_seconds(line.split()[-1]) - r.D / 1e5) <= 0.5
  total = lines[3 + len(plan.runs)]
  assert f"{len(plan.runs)} runs over {len(plan.budgets())} budgets" in total
  est = total.split("est. ")[1].split()[0]
  assert abs(_hms_seconds(est) - sum(r.D for r in plan.runs) / 1e5) <= 1


def test_quickstart_shape():
  # Issue 11: >= 4 budgets (the extrapolation check holds one out), each with
  # >= 3 distinct sizes and a seed repeat; WSD trunks that cost <= 70 % of
  # independent runs of the same points.
  plan = planner.make_plan(quickstart.get_config())
  budgets = plan.budgets()
  assert len(budgets) >= 4
  for C in budgets:
    runs = [r for r in plan.runs if r.budget == C]
    assert len({r.N for r in runs}) >= 3
    assert sum(r.repeat_of is not None for r in runs) == 1
  assert all(2_000 <= r.N <= 150_000 for r in plan.runs)
  assert plan.spent_flops() <= 0.7 * plan.independent_flops()


def test_seed_repeats_copy_the_central_run_with_new_seeds():
  base = planner.make_plan(_cfg())
  plan = planner.make_plan(_cfg(seed_repeats=2))
  assert len(plan.runs) == len(base.runs) + 2 * len(base.budgets())
  for C in plan.budgets():
    reps = [r for r in plan.runs if r.budget == C and r.repeat_of]
    assert len(reps) == 2
    (orig,) = {r.repeat_of for r in reps}
    first = next(r for r in plan.runs if r.run_id == orig)
    # The repeated size is the one nearest the budget's centre in log N.
    sizes = [r for r in plan.runs if r.budget == C and not r.repeat_of]
    gap = lambda r: abs(math.log(r.N / plan.centers[C]))
    assert gap(first) == min(gap(r) for r in sizes)
    assert sorted(r.seed for r in reps) == [first.seed + 1, first.seed + 2]
    for r in reps:
      assert (r.shape, r.D, r.steps, r.lr, r.batch_size) == (
          first.shape, first.D, first.steps, first.lr, first.batch_size)
      assert r.lm_config(_cfg().lm).train.seed == r.seed
  ids = [r.run_id for r in plan.runs]
  assert len(set(ids)) == len(ids)
  assert planner.config_hash(_cfg(seed_repeats=2)) != planner.config_hash(
      _cfg())
  # max_epochs is a guard, not a result: it does not change the hash.
  assert planner.config_hash(_cfg(max_epochs=3.0)) == planner.config_hash(
      _cfg())


@pytest.mark.parametrize("field,value", [
    ("seed_repeats", -1), ("seed_repeats", 1.5), ("max_epochs", -0.5),
    ("max_epochs", float("inf"))])
def test_bad_repeat_and_epoch_settings(field, value):
  with pytest.raises(planner.PlanError, match=field):
    planner.make_plan(_cfg(**{field: value}))


def test_epoch_guard_names_the_run_and_the_missing_text():
  plan = planner.make_plan(_cfg())
  D_max = max(r.D for r in plan.runs)
  ok = planner.make_plan(_cfg(), unique_train_tokens=D_max)    # exactly 1 epoch
  assert ok.epochs(max(ok.runs, key=lambda r: r.D)) == 1.0
  assert "epochs = D / " in planner.format_plan(ok)
  with pytest.raises(planner.PlanError) as e:
    planner.make_plan(_cfg(), unique_train_tokens=D_max // 2)
  msg = str(e.value)
  biggest = max(plan.runs, key=lambda r: r.D)
  assert biggest.run_id in msg and "\n" not in msg
  assert f"{D_max - D_max // 2:,} more unique tokens" in msg
  # max_epochs=2 admits the same data; 0 disables the guard.
  planner.make_plan(_cfg(max_epochs=2.0), unique_train_tokens=D_max // 2)
  planner.make_plan(_cfg(max_epochs=0), unique_train_tokens=1)
  # The guard reaches the trainer too (tfds: counted only when a run starts).
  assert plan.runs[0].lm_config(_cfg().lm).train.max_epochs == 1.0


def test_quickstart_counts_its_corpus_and_repeats_no_data():
  cfg = quickstart.get_config()
  U = planner.count_unique_tokens(cfg)
  plan = planner.make_plan(cfg, unique_train_tokens=U)
  assert U > 0 and max(plan.epochs(r) for r in plan.runs) <= 1.0


def test_unprepared_tfds_is_not_counted_but_bad_files_are_errors(tmp_path):
  cfg = c4_small.get_config()
  cfg.lm.data.tfds_data_dir = str(tmp_path / "no_such_dir")
  assert planner.count_unique_tokens(cfg) is None    # --plan_only on a laptop
  files = _cfg()
  files.lm.data.source = "files"
  files.lm.data.path = str(tmp_path / "missing.txt")
  with pytest.raises(ConfigError, match="missing.txt"):
    planner.count_unique_tokens(files)
