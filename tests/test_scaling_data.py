"""Tests for scaling.io.loaders: built-in data sets, CSV/JSONL parsing, errors."""
import hashlib
import json
import os

import numpy as np
import pytest

from scaling.io import loaders as data


@pytest.mark.parametrize("name,n_rows,n_budgets", [
    ("chinchilla_epoch", 240, 0),
    ("chinchilla_epoch_all", 245, 0),
    ("chinchilla_epoch_isoflop", 123, 9),
    ("llama3_isoflop", 133, 10),
    ("marin_dclm", 85, 7),
    ("marin_comma", 85, 7),
    ("marin_nemotron", 88, 8),
    ("misfitting_final", 261, 0),
    ("misfitting_final_best_lr", 81, 0),
])
def test_builtin_row_counts(name, n_rows, n_budgets):
  runs = data.load_runs(name)
  assert len(runs) == n_rows
  assert runs.provenance["n_rows"] == n_rows
  assert runs.provenance["dataset_citation"]
  for a in (runs.N, runs.D, runs.C, runs.loss):
    assert a.dtype == np.float64 and np.all(np.isfinite(a) & (a > 0))
  finite_budgets = runs.budget[np.isfinite(runs.budget)]
  assert len(set(finite_budgets)) == n_budgets
  assert len(set(runs.run_id)) == n_rows


def test_every_builtin_is_listed_and_loads():
  assert len(data.BUILTIN_DATASETS) >= 8
  for name in data.BUILTIN_DATASETS:
    assert len(data.load_runs(name)) > 0


# SHA-256 of the bundled files, taken from the reference copies in
# /work/shared/data/scaling/ (verified byte-identical when pinned); a change to
# any bundled number fails here.
PINNED_SHA256 = {
    "epoch_chinchilla_svg_extracted_data.csv":
        "193478df4e90f040016431996c45682659306840ecdadf83cfb9cd5ca0aa1b30",
    "openathena_isoflops_extract.csv":
        "cf343ffda3106862e0e73bfc10ed017f683a03e46f4540896a213276fd180651",
    "marin_202603_isoflop-comma.csv":
        "0b352c08b3c96d97ef3d7534becbc0a2918493e6e37961943b022056277e4406",
    "marin_202603_isoflop-dclm.csv":
        "8a75a0fbc7b34250501de17ab336fdf99d6bee67e44f62b8bed4b81fb9f033af",
    "marin_202603_isoflop-nemotron.csv":
        "5e615183ba71083721a5bc169adf7c9c997c4820fd69f383f108e0a4ca3ea375",
    "li2025_scaling_results.csv":
        "193b4b7665365112605417e2ef06d55efe599cfa08412354e3ae42c3af7a9f58",
    "li2025_scaling_results_last_ckpt_only.csv":
        "cd96b9eb8e5b2adc80e6739a642dd8554590edc96234d36859ab6ed0f5c30562",
    "anchors.json":
        "ec52af5278fcb986d62ee5eed57d985af8effe6f7005713d4b6fc549ae615bb7",
    "hoffmann2022_table2_exponents.csv":
        "ca0ca39fcb1b815b765da90ee36c6ba1042fb0e3ac6db4d42e92de774513c89a",
    "hoffmann2022_approach3_parametric_params.csv":
        "f08e8c91eedef21f5f7126e9d87b3f45ecb16c34660506b9f783797c944d52ee",
    "hoffmann2022_table3_approach1_optimal.csv":
        "f5d3dd183c48e27bc273767f0fbc15953d8bf1b8c3c86a49213d2e7d70919efc",
    "hoffmann2022_tableA3_approach2_3_optimal.csv":
        "9cf82062e29176d5c66a3809f7a29723387977c16bc420c7660bac508187610d",
    "hoffmann2022_tableA4_flop_ratio.csv":
        "9a6587d01586d4f2a951f63bcf0ed1a044c77dc3f90c39438f173744e936e40e",
    "hoffmann2022_tableA9_model_configs.csv":
        "588ef579317673585dff5fa939c6bbd46e6f821dfae3c1af4ef1a85572c96200",
}


@pytest.mark.parametrize("fname", sorted(PINNED_SHA256))
def test_bundled_files_match_pinned_sha256(fname):
  with open(os.path.join(data.DATASETS_DIR, fname), "rb") as f:
    assert hashlib.sha256(f.read()).hexdigest() == PINNED_SHA256[fname]


@pytest.mark.parametrize("name", ["chinchilla_epoch", "llama3_isoflop",
                                  "misfitting_final"])
def test_builtin_provenance_records_pinned_sha256(name):
  runs = data.load_runs(name)
  assert runs.provenance["sha256"] == PINNED_SHA256[runs.provenance["file"]]


def test_epoch_outlier_rule_and_token_convention():
  all_runs = data.load_runs("chinchilla_epoch_all")
  runs = data.load_runs("chinchilla_epoch")
  # Besiroglu et al. 2024: the 5 highest-loss points are dropped.
  assert len(runs.provenance["exclusions"]) == 5
  assert runs.loss.max() < np.sort(all_runs.loss)[-5]
  np.testing.assert_allclose(runs.D, runs.C / (6 * runs.N), rtol=1e-12)
  # Ranges stated in the data README.
  assert 5.7e7 < all_runs.N.min() < 5.8e7 and 1.6e10 < all_runs.N.max()
  assert 2.07 < all_runs.loss.min() < 2.08 and 5.0 < all_runs.loss.max()


def test_epoch_isoflop_budgets_match_chinchilla():
  runs = data.load_runs("chinchilla_epoch_isoflop")
  assert runs.budget.min() == 6e18 and runs.budget.max() == 3e21
  np.testing.assert_allclose(runs.C, runs.budget, rtol=1e-9)


def test_llama3_choice_reproduces_published_token_exponent():
  """Approach 2 (quadratic in log D per budget) on llama3_isoflop gives
  D* = 0.299 C^0.537 (Llama 3 paper: (A, alpha) = (0.29, 0.53))."""
  runs = data.load_runs("llama3_isoflop")
  budgets = np.unique(runs.budget)
  d_star = []
  for c in budgets:
    m = runs.budget == c
    p = np.polyfit(np.log(runs.D[m]), runs.loss[m], 2)
    d_star.append(np.exp(-p[1] / (2 * p[0])))
  slope, icpt = np.polyfit(np.log(budgets), np.log(d_star), 1)
  assert abs(slope - 0.537) <= 0.005
  assert abs(np.exp(icpt) / 0.299 - 1) <= 0.05


def _write(tmp_path, name, text):
  p = tmp_path / name
  p.write_text(text)
  return str(p)


def test_csv_derives_c_from_6nd(tmp_path):
  p = _write(tmp_path, "a.csv", "params,tokens,loss\n1e8,2e9,3.0\n2e8,4e9,2.9\n")
  runs = data.load_runs(p)
  np.testing.assert_allclose(runs.C, [1.2e18, 4.8e18])
  assert runs.provenance["flop_convention"] == "6ND"
  assert np.all(np.isnan(runs.budget))
  assert runs.provenance["sha256"] == hashlib.sha256(
      open(p, "rb").read()).hexdigest()


def test_csv_derives_d_from_c(tmp_path):
  p = _write(tmp_path, "a.csv", "N,FLOPs,Loss,budget\n1e8,1.2e18,3.0,1e18\n")
  runs = data.load_runs(p)
  np.testing.assert_allclose(runs.D, [2e9])
  assert runs.budget[0] == 1e18


def test_csv_keeps_both_d_and_c(tmp_path):
  p = _write(tmp_path, "a.csv", "N,D,C,loss\n1e8,2e9,1.5e18,3.0\n")
  runs = data.load_runs(p)
  assert runs.C[0] == 1.5e18 and runs.D[0] == 2e9
  assert runs.provenance["flop_convention"] == "as_given"
  runs = data.load_runs(p, flop_convention="hoffmann_appendix_f")
  assert runs.provenance["flop_convention"] == "hoffmann_appendix_f"


@pytest.mark.parametrize("text,fragment", [
    ("N,D\n1e8,2e9\n", "loss"),
    ("N,loss\n1e8,3.0\n", "D or C"),
    ("", "empty"),
    ("N,D,loss\n", "no usable rows"),
    ("N,D,loss\n-1e8,2e9,3.0\n", "N="),
    ("N,D,loss\n1e8,0,3.0\n", "D="),
    ("N,D,loss\n1e8,2e9,nan\n", "loss="),
    ("N,D,loss\n1e8,2e9,abc\n", "not a number"),
    ("N,D,loss\n1e8,2e9,\n", "loss="),
])
def test_bad_csv_raises_one_line_error(tmp_path, text, fragment):
  p = _write(tmp_path, "bad.csv", text)
  with pytest.raises(data.ScalingDataError) as e:
    data.load_runs(p)
  assert fragment in str(e.value)
  assert "\n" not in str(e.value)


def test_diverged_rows_are_excluded_with_warning(tmp_path):
  p = _write(tmp_path, "a.csv",
             "run_id,N,D,loss,status\nr1,1e8,2e9,3.0,ok\n"
             "r2,1e8,4e9,nan,diverged\nr3,2e8,2e9,2.9,OK\n")
  with pytest.warns(UserWarning, match="r2"):
    runs = data.load_runs(p)
  assert list(runs.run_id) == ["r1", "r3"]
  assert runs.provenance["n_rows_read"] == 3
  assert any("r2" in x for x in runs.provenance["exclusions"])


def _ledger_line(**kw):
  rec = dict(schema_version=1, run_id="r", budget=1e18, N=100000000,
             D=2000000000, C=1.2e18, eval_loss=3.0, train_loss=3.1,
             status="ok", wall_time_s=10.0, flop_convention="6ND",
             shape={"d_model": 512})
  rec.update(kw)
  return json.dumps(rec)


def test_jsonl_ledger(tmp_path):
  lines = [_ledger_line(run_id="a"), _ledger_line(run_id="b", N=200000000,
                                                  eval_loss=2.9),
           _ledger_line(run_id="c", status="diverged", eval_loss=None)]
  p = _write(tmp_path, "ledger.jsonl", "\n".join(lines) + "\n")
  with pytest.warns(UserWarning, match="c"):
    runs = data.load_runs(p)
  assert list(runs.run_id) == ["a", "b"]
  np.testing.assert_allclose(runs.loss, [3.0, 2.9])
  assert runs.provenance["flop_convention"] == "6ND"
  assert runs.budget[0] == 1e18


def test_jsonl_bad_line_names_line_number(tmp_path):
  p = _write(tmp_path, "ledger.jsonl", _ledger_line() + "\n{not json\n")
  with pytest.raises(data.ScalingDataError, match=r"ledger.jsonl:2"):
    data.load_runs(p)


def test_jsonl_missing_key(tmp_path):
  rec = json.loads(_ledger_line())
  del rec["eval_loss"]
  p = _write(tmp_path, "ledger.jsonl", json.dumps(rec) + "\n")
  with pytest.raises(data.ScalingDataError, match="eval_loss"):
    data.load_runs(p)


def test_unknown_source_and_missing_file(tmp_path):
  with pytest.raises(data.ScalingDataError, match="unknown data source"):
    data.load_runs("no_such_dataset")
  with pytest.raises(data.ScalingDataError, match="cannot read"):
    data.load_runs(str(tmp_path / "missing.csv"))


def test_subset_keeps_provenance():
  runs = data.load_runs("chinchilla_epoch_all")
  sub = runs.subset(runs.loss < 3.0)
  assert 0 < len(sub) < len(runs)
  assert sub.provenance["sha256"] == runs.provenance["sha256"]
  assert sub.provenance["exclusions"] == runs.provenance["exclusions"]
  assert np.all(sub.loss < 3.0)


def test_complete_6nd_fills_only_missing_entries():
  N = np.array([1e8, 2e8, 4e8])
  D = np.array([2e9, np.nan, 9e9])      # row 1 missing; others not C/(6N)
  C = np.array([1.3e18, 4.8e18, np.nan])
  D2, C2, fD, fC = data.complete_6nd(N, D, C)
  np.testing.assert_array_equal(fD, [False, True, False])
  np.testing.assert_array_equal(fC, [False, False, True])
  assert D2[0] == 2e9 and C2[0] == 1.3e18          # given values kept
  assert D2[1] == pytest.approx(4.8e18 / (6 * 2e8))
  assert C2[2] == pytest.approx(6 * 4e8 * 9e9)
  with pytest.raises(data.ScalingDataError, match="neither D nor C"):
    data.complete_6nd(N, D, np.full(3, np.nan))
