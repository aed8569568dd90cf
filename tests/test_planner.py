"""Properties of the IsoFLOP planner (no training, no data): counted FLOPs,
shapes, size targets, errors, the config hash, the lr / batch / step rules and
the plan table. Centring on a fit.json: test_planner_centering.py; seed
repeats and the epoch guard: test_planner_repeats.py."""
import json
import math
import warnings

import pytest

from experiments import planner
from experiments.configs import c4_small, quickstart, tiny_sweep
from lm import params as params_lib
from lm.config import ModelConfig
from tests.helpers.planner_cfg import fit_json, sweep_cfg


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
               "synthetic": sweep_cfg}


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
    assert 0 < r.lr <= cfg.sweep.lr_max * r.lr_multiplier  # clamp, then x m
    assert r.steps >= cfg.sweep.min_steps
  ids = [r.run_id for r in plan.runs]
  assert len(set(ids)) == len(ids)
  assert all(set(i) <= set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL"
                           "MNOPQRSTUVWXYZ_+-.") for i in ids)


def test_sizes_log_spaced_and_centred():
  cfg = sweep_cfg()
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


def test_too_small_budget_is_a_one_line_error():
  with pytest.raises(planner.PlanError, match="too small") as e:
    planner.make_plan(sweep_cfg(budgets=(1e5,)))
  assert "\n" not in str(e.value)
  with pytest.raises(planner.PlanError, match="too small"):
    planner.make_plan(sweep_cfg(budgets=(1e5, 1e11)))


def test_few_sizes_warn_and_none_with_three_is_an_error():
  # At 1e9 FLOPs only d_model=8 runs >= 50 steps (d_model=16 gets 43.5): a
  # budget with 1-2 sizes warns and is kept; skipped sizes say why.
  with pytest.warns(UserWarning, match="usable sizes"):
    plan = planner.make_plan(sweep_cfg(budgets=(1e9, 1e11), prior_k=2.0))
  small = [r for r in plan.runs if r.budget == 1e9]
  assert 1 <= len(small) < 3
  reasons = [s.reason for s in plan.skipped if s.budget == 1e9]
  assert any("min_steps" in r for r in reasons)
  assert any("no shape" in r for r in reasons)
  with pytest.raises(planner.PlanError, match="no budget has >= 3"):
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      planner.make_plan(sweep_cfg(budgets=(1e9,), prior_k=2.0))


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
    planner.make_plan(sweep_cfg(**{field: value}))
  assert "\n" not in str(e.value)


def test_unknown_sweep_field():
  with pytest.raises(planner.PlanError, match="unknown sweep field"):
    planner.default_sweep(n_size=5)


def test_config_hash_tracks_sweep_and_lm_fields(tmp_path):
  h = planner.config_hash(sweep_cfg())
  assert h == planner.config_hash(sweep_cfg())                  # deterministic
  assert h == planner.config_hash(sweep_cfg(budgets=(100000000000, 3e11)))
  assert h != planner.config_hash(sweep_cfg(n_sizes=6))
  assert h != planner.config_hash(sweep_cfg(prior_k=0.51))
  c = sweep_cfg()
  c.lm.train.weight_decay = 0.0
  assert planner.config_hash(c) != h
  c = sweep_cfg()
  c.lm.train.steps_per_call = 10       # steps are aligned to it
  assert planner.config_hash(c) != h
  c = sweep_cfg()
  c.lm.train.progress = False          # cosmetic: does not change results
  c.lm.train.log_every = 7
  c.sweep.est_flops_per_s = 1e12
  assert planner.config_hash(c) == h
  fit = tmp_path / "fit.json"
  fit_json(fit, approach2={"k_N": 1e-3, "a": 0.5})
  h1 = planner.config_hash(sweep_cfg(center=str(fit)))
  fit_json(fit, approach2={"k_N": 2e-3, "a": 0.5})
  # A refit gives a new hash.
  assert planner.config_hash(sweep_cfg(center=str(fit))) != h1


def test_lm_config_and_to_dict():
  cfg = sweep_cfg()
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
