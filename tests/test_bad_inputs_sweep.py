"""Bad input and faults against experiments.isoflop, experiments.analyze,
scaling.fit and the ledger (issue 12).

No training here: sweep directories are built from ledger lines and tiny
checkpoints, and every entry point runs in-process as ``python -m`` does
(tests/helpers/entry.py), so each case costs milliseconds to a few seconds.
"""
import errno
import os
import signal
import socket

import numpy as np
import pytest

from tests.helpers.entry import run_entry
from tests.helpers.faults import hold_lock, one_line, snapshot

SWEEP = "--config=experiments/configs/tiny_sweep.py"


def _record(run_id, **kw):
  rec = dict(run_id=run_id, budget=1e18, N=100_000_000, D=2_000_000_000,
             C=1.2e18, eval_loss=3.0, train_loss=3.1, status="ok",
             flop_convention="6N", param_convention="total")
  rec.update(kw)
  return rec


def _ledger_bytes(records):
  from experiments.ledger import encode
  return b"".join(encode(r) for r in records)


def _isoflop_records(scale=1.0, **kw):
  """3 budgets x 5 sizes of a clean isoFLOP grid (C = 6ND)."""
  out = []
  for C in (1e18, 1e19, 1e20):
    n_opt = 0.1 * C**0.5
    for j, x in enumerate(np.linspace(-0.5, 0.5, 5)):
      N = n_opt * 10**x
      D = C / (6 * N)
      out.append(_record(f"C{C:.0e}_{j}", budget=C, N=N * scale, D=D * scale,
                         C=6 * N * D * scale**2,
                         eval_loss=2.0 + C**-0.05 + 0.3 * x**2, **kw))
  return out


def _write_ledger(path, records, tail=b""):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "wb") as f:
    f.write(_ledger_bytes(records) + tail)
  return str(path)


# ---------------------------------------------------------------- the ledger

def test_append_after_missing_final_newline_repairs_by_appending_only(tmp_path):
  from experiments.ledger import Ledger
  path = tmp_path / "results.jsonl"
  raw = _ledger_bytes([_record("a"), _record("b")]).rstrip(b"\n")
  path.write_bytes(raw)  # an editor removed the final newline
  Ledger(str(path)).append(_record("c"))
  data = path.read_bytes()
  assert data.startswith(raw)                    # old bytes untouched
  assert [r["run_id"] for r in Ledger(str(path)).read()] == ["a", "b", "c"]


def test_failed_append_leaves_the_ledger_bytes_unchanged(tmp_path, monkeypatch):
  from experiments import ledger as ledger_lib
  path = tmp_path / "results.jsonl"
  before = _ledger_bytes([_record("a")])
  path.write_bytes(before)
  real = os.write

  def half_then_full(fd, data):  # the disk fills up in the middle of the line
    if len(data) > 8:
      return real(fd, bytes(data[: len(data) // 2]))
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

  monkeypatch.setattr(ledger_lib.os, "write", half_then_full)
  with pytest.raises(OSError, match="No space"):
    ledger_lib.Ledger(str(path)).append(_record("b"))
  assert path.read_bytes() == before


def test_append_of_a_run_already_in_the_ledger_is_refused(tmp_path):
  from experiments.ledger import Ledger, LedgerError
  path = _write_ledger(tmp_path / "results.jsonl",
                       [_record("a"), _record("b", status="failed")])
  before = open(path, "rb").read()
  with pytest.raises(LedgerError, match="already has a final outcome"):
    Ledger(path).append(_record("a"))
  assert open(path, "rb").read() == before
  # A failed run is retried: its new outcome supersedes the failed line.
  Ledger(path).append(_record("b"))
  assert {r["run_id"]: r["status"] for r in Ledger(path).read()} == {
      "a": "ok", "b": "ok"}


def test_one_schema_for_writer_and_readers(tmp_path):
  """The optional fields of COMMON.md item 2 round-trip through the writer,
  the ledger reader and scaling's loader; a bad type is named."""
  from experiments.ledger import FIELDS, Ledger, LedgerError
  from scaling.io import loaders as data
  extra = dict(eval_loss_se=0.01, eval_tokens=4096, eval_sha256="ab" * 32,
               epochs=0.5, eval_flops=1e12, seed=3, repeat_of=None,
               flops_per_token=6e8)
  assert set(extra) <= set(FIELDS)
  path = str(tmp_path / "results.jsonl")
  Ledger(path).append(_record("a", **extra))
  assert Ledger(path).read()[0]["eval_tokens"] == 4096
  assert len(data.load_runs(path)) == 1
  with pytest.raises(LedgerError, match="eval_tokens='many'"):
    Ledger(path).append(_record("b", eval_tokens="many"))


# ---------------------------------------------------------------- experiments.isoflop

def test_sweep_second_driver_is_refused(capfd, tmp_path):
  workdir = tmp_path / "sweep"
  holder = hold_lock(workdir, "sweep driver")
  try:
    rc, _, err = run_entry(capfd, "experiments.isoflop", SWEEP,
                           f"--workdir={workdir}", "--noprogress")
    assert rc == 2
    assert (f"in use by another sweep driver (pid {holder.pid} on host "
            f"{socket.gethostname()}") in one_line(err)
    assert sorted(os.listdir(workdir)) == [".lock"]  # nothing written
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()


@pytest.mark.parametrize("tail,needle", [
    (b'{"run_id": "C1e', "incomplete last line"),
    (b"", "appears twice"),
])
def test_sweep_refuses_a_bad_ledger_and_leaves_it(capfd, tmp_path, tail, needle):
  workdir = tmp_path / "sweep"
  recs = [_record("x")] + ([_record("x")] if not tail else [])
  path = _write_ledger(workdir / "results.jsonl", recs, tail)
  before = snapshot(workdir, lock=False)
  rc, _, err = run_entry(capfd, "experiments.isoflop", SWEEP,
                         f"--workdir={workdir}", "--noprogress")
  assert rc == 2
  line = one_line(err)
  assert needle in line and "results.jsonl:" in line
  assert snapshot(workdir, lock=False) == before
  assert open(path, "rb").read().endswith(tail)


def test_deleted_sweep_json_does_not_make_old_runs_adoptable(capfd, tmp_path):
  """A ledger whose runs' checkpoints record another sweep config (here: none)
  is refused when sweep.json is gone."""
  import jax.numpy as jnp
  from experiments import provenance
  from lm.checkpoint import Checkpointer
  workdir = tmp_path / "sweep"
  _write_ledger(workdir / "results.jsonl", [_record("C1e+09_N2.91e+03_d8_L1")])
  ck = Checkpointer(str(workdir / "runs" / "C1e+09_N2.91e+03_d8_L1" /
                        "checkpoints"))
  ck.save(10, {"w": jnp.ones(3)}, {}, {"provenance": provenance.provenance(
      "0" * 64)})
  ck.close()
  before = snapshot(workdir, lock=False)
  rc, _, err = run_entry(capfd, "experiments.isoflop", SWEEP,
                         f"--workdir={workdir}", "--noprogress",
                         "--config.lm.train.seed=1")
  assert rc == 2
  line = one_line(err)
  assert "has no sweep.json" in line and "000000000000" in line
  assert snapshot(workdir, lock=False) == before


def test_sweep_provenance_matches_the_trainer_record(tmp_path):
  import jax.numpy as jnp
  from experiments import provenance
  from lm.checkpoint import Checkpointer
  workdir = tmp_path / "sweep"
  _write_ledger(workdir / "results.jsonl", [_record("r")])
  ck = Checkpointer(str(workdir / "runs" / "r" / "checkpoints"))
  ck.save(5, {"w": jnp.ones(3)}, {}, {"provenance": provenance.provenance(
      "ab" * 32)})
  ck.close()
  provenance.check_unrecorded(str(workdir), "ab" * 32)  # adopted
  with pytest.raises(provenance.ProvenanceError, match="abababababab"):
    provenance.check_unrecorded(str(workdir), "cd" * 32)


def test_sweep_disk_full_writing_sweep_json(capfd, tmp_path, monkeypatch):
  import lm.logs

  def full(fd):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

  monkeypatch.setattr(lm.logs.os, "fsync", full)
  workdir = tmp_path / "sweep"
  rc, _, err = run_entry(capfd, "experiments.isoflop", SWEEP,
                         f"--workdir={workdir}", "--noprogress")
  assert rc == 2
  assert "the disk is full" in one_line(err)
  assert sorted(os.listdir(workdir)) == [".lock"]  # no half-written files


@pytest.mark.parametrize("args,needle", [
    (["--config.lm.train.b1=1.5"], "train.b1 must be a finite number in [0, 1)"),
    (["--config.lm.train.grad_clip=-1"], "train.grad_clip"),
    (["--config.lm.mesh.shape=(1.7,1,1)"], "mesh.shape must be a tuple of integers"),
    (["--config.sweep.n_sizes=2"], "sweep.n_sizes must be >= 3"),
    (["--config.sweep.branches=0"], "sweep.branches must be 'all' or an integer"),
    (["--config.sweep.branches=2.5"], "sweep.branches must be 'all' or an integer"),
    (["--config.sweep.branches=3"], "1 <= k <= 2 (the number of sweep.budgets)"),
    (["--config.analysis.bootstrap=-5"], "analysis.bootstrap must be an integer >= 0"),
    (["--bootstrap=-1"], "--bootstrap=-1"),
    (["--config=/nonexistent/sweep.py"], "sweep.py"),
])
def test_sweep_bad_settings(capfd, tmp_path, args, needle):
  workdir = tmp_path / "sweep"
  rc, _, err = run_entry(capfd, "experiments.isoflop", SWEEP,
                         f"--workdir={workdir}", "--noprogress", *args)
  assert rc == 2 and needle in one_line(err)
  assert not os.path.exists(workdir)  # refused before anything is written


def test_sweep_workdir_under_a_file(capfd, tmp_path):
  afile = tmp_path / "afile"
  afile.write_text("x")
  rc, _, err = run_entry(capfd, "experiments.isoflop", SWEEP,
                         f"--workdir={afile}/sweep", "--noprogress")
  assert rc == 2 and "not a directory" in one_line(err).lower()


# ---------------------------------------------------------------- experiments.analyze

@pytest.mark.parametrize("args,needle", [
    (["--approach=4"], "--approach must be a comma-separated subset of 1,2,3"),
    (["--approach=x"], "--approach must be"),
    (["--bootstrap=-3"], "--bootstrap=-3"),
])
def test_analyze_bad_flags(capfd, tmp_path, args, needle):
  workdir = tmp_path / "sweep"
  _write_ledger(workdir / "results.jsonl", _isoflop_records())
  before = snapshot(workdir)
  rc, _, err = run_entry(capfd, "experiments.analyze", str(workdir), *args)
  assert rc == 2 and needle in one_line(err)
  assert snapshot(workdir) == before


@pytest.mark.parametrize("tail,needle", [
    (b'{"run_id": "C1e', "incomplete last line"),
    (b"[1, 2]\n", "not a JSON object"),
])
def test_analyze_bad_ledger_changes_nothing(capfd, tmp_path, tail, needle):
  workdir = tmp_path / "sweep"
  _write_ledger(workdir / "results.jsonl", _isoflop_records(), tail)
  before = snapshot(workdir)
  rc, _, err = run_entry(capfd, "experiments.analyze", str(workdir))
  assert rc == 2 and needle in one_line(err)
  assert snapshot(workdir) == before and not os.path.exists(workdir / "report")


def test_analyze_duplicate_run_id_is_an_error(capfd, tmp_path):
  workdir = tmp_path / "sweep"
  recs = _isoflop_records()
  _write_ledger(workdir / "results.jsonl", recs + [recs[3]])
  before = snapshot(workdir)
  rc, _, err = run_entry(capfd, "experiments.analyze", str(workdir))
  assert rc == 2
  assert f"run {recs[3]['run_id']} appears twice: again after its final outcome on line 4" in one_line(err)
  assert snapshot(workdir) == before


def test_analyze_missing_ledger(capfd, tmp_path):
  rc, _, err = run_entry(capfd, "experiments.analyze", str(tmp_path / "none"))
  assert rc == 2 and "run the sweep first" in one_line(err)
  assert not os.path.exists(tmp_path / "none")


# ---------------------------------------------------------------- scaling.fit

def _fit(capfd, *args):
  return run_entry(capfd, "scaling.fit", "--bootstrap=0", "--plots=false",
                   *args)


def _csv(path, rows, header="N,D,loss,budget,run_id"):
  with open(path, "w") as f:
    f.write(header + "\n")
    for r in rows:
      f.write(",".join(str(v) for v in r) + "\n")
  return str(path)


def _rows(recs, scale=1.0):
  return [(r["N"] * scale, r["D"] * scale, r["eval_loss"], r["budget"],
           r["run_id"]) for r in recs]


def test_fit_ledger_with_duplicate_run_ids_is_an_error(capfd, tmp_path):
  recs = _isoflop_records()
  path = _write_ledger(tmp_path / "dup.jsonl", recs + [recs[0]])
  rc, _, err = _fit(capfd, f"--input={path}", "--approach=2")
  assert rc == 2 and "appears twice" in one_line(err)


def test_fit_csv_with_duplicate_run_ids_is_an_error(capfd, tmp_path):
  recs = _isoflop_records()
  path = _csv(tmp_path / "dup.csv", _rows(recs) + _rows(recs[:1]))
  rc, _, err = _fit(capfd, f"--input={path}", "--approach=2")
  assert rc == 2 and "appears 2 times" in one_line(err)


def test_fit_every_row_duplicated_warns(capfd, tmp_path):
  recs = _isoflop_records()
  rows = _rows(recs) + [r[:4] + (r[4] + "_copy",) for r in _rows(recs)]
  path = _csv(tmp_path / "twice.csv", rows)
  rc, out, err = _fit(capfd, f"--input={path}", "--approach=2")
  assert rc == 0, err
  assert "15 row(s) repeat another row's (N, D, loss) exactly" in err


def test_fit_inconsistent_C_warns(capfd, tmp_path):
  recs = _isoflop_records()
  rows = [(r["N"], r["D"], r["C"] * 100, r["eval_loss"], r["budget"],
           r["run_id"]) for r in recs]
  path = _csv(tmp_path / "c.csv", rows, "N,D,C,loss,budget,run_id")
  rc, _, err = _fit(capfd, f"--input={path}", "--approach=2")
  assert rc == 0, err
  assert "C is 100 x 6ND" in err


def test_fit_ledger_C_must_match_flops_per_token(capfd, tmp_path):
  recs = _isoflop_records()
  for r in recs:
    r["flops_per_token"] = 6 * r["N"]
  recs[2]["C"] *= 1.5
  path = _write_ledger(tmp_path / "c.jsonl", recs)
  rc, _, err = _fit(capfd, f"--input={path}", "--approach=2")
  assert rc == 0, err
  assert "is not D x flops_per_token" in err


def test_fit_values_scaled_by_1e100_are_refused(capfd, tmp_path):
  """The fit used to run and collapse its intervals to a point."""
  path = _csv(tmp_path / "huge.csv", _rows(_isoflop_records(), scale=1e100))
  rc, _, err = _fit(capfd, f"--input={path}", "--approach=2,3")
  assert rc == 2
  assert "far outside any physical range" in one_line(err)


def test_fit_units_look_wrong_warns(capfd, tmp_path):
  path = _csv(tmp_path / "millions.csv", _rows(_isoflop_records(), scale=1e-6))
  rc, _, err = _fit(capfd, f"--input={path}", "--approach=2")
  assert rc == 0, err
  assert "outside the range of real language models" in err


@pytest.mark.parametrize("args,needle", [
    (["--input=/nonexistent.csv"], "cannot read"),
    (["--input=chinchilla_epoch", "--bootstrap=-1"], "--bootstrap=-1"),
    (["--input=chinchilla_epoch", "--approach=5"], "subset of 1,2,3"),
    ([], "--input"),
])
def test_fit_bad_flags_exit_2(capfd, args, needle):
  rc, _, err = run_entry(capfd, "scaling.fit", *args)
  assert rc == 2 and needle in one_line(err)


def test_fit_verbose_env_adds_the_traceback(capfd, monkeypatch):
  monkeypatch.setenv("SCALINGLM_VERBOSE", "1")
  rc, _, err = run_entry(capfd, "scaling.fit", "--input=/nonexistent.csv")
  assert rc == 2 and "Traceback" in err
  assert err.strip().splitlines()[-1].startswith("error: cannot read")


def test_checkpointer_keeps_the_newest_and_a_reader_changes_nothing(tmp_path):
  """preservation_policy=LatestN(keep) (not the deprecated max_to_keep), and
  a read-only Checkpointer on a missing directory creates nothing."""
  import jax.numpy as jnp
  from lm.checkpoint import Checkpointer
  ck = Checkpointer(str(tmp_path / "ck"), keep=2)
  for step in (1, 2, 3):
    ck.save(step, {"w": jnp.full(3, step, jnp.float32)}, {"pos": step})
  assert ck.all_steps() == [2, 3]
  ck.close()
  assert Checkpointer(str(tmp_path / "none"), read_only=True).all_steps() == []
  assert not os.path.exists(tmp_path / "none")
