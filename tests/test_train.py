"""Training end to end on the embedded corpus: outputs, learning, sampling, bad input."""
import json
import math
import os

import pytest

from lm.config import ConfigError
from tests.conftest import micro_config, run_cli


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  from lm.trainer import train
  workdir = str(tmp_path_factory.mktemp("run"))
  meta = train(micro_config(steps=60, ckpt_every=30), workdir, verbose=False)
  return workdir, meta


def _records(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


def test_outputs_and_metadata(trained):
  workdir, meta = trained
  recs = _records(workdir)
  assert [r["step"] for r in recs] == [10, 20, 30, 40, 50, 60]
  for r in recs:
    for key in ("step", "tokens", "flops", "loss", "lr", "tokens_per_s", "mfu"):
      assert key in r and math.isfinite(r[key]), key
  assert recs[-1]["tokens"] == 60 * 8 * 32
  assert recs[-1]["flops"] == pytest.approx(meta["flops_per_token"] * 60 * 8 * 32)
  assert "eval_loss" in recs[2] and "eval_loss" in recs[-1]
  # The schedule ends exactly at the planned step at 10% of peak (Chinchilla).
  assert recs[-1]["lr"] == pytest.approx(0.1 * 1e-2, rel=1e-5)
  run = json.load(open(os.path.join(workdir, "run.json")))
  assert run["status"] == "completed"
  assert run["eval_loss"] == recs[-1]["eval_loss"]
  from lm.flops import CONVENTIONS
  assert run["flop_convention"] == "attention_inclusive"  # TrainConfig default
  assert run["flop_convention_citation"] == CONVENTIONS["attention_inclusive"]
  # The eval set: 4096 target tokens = 128 rows of 32, scored twice (steps 30
  # and 60) in 2 batches of 64; forward FLOPs = F / 3 per token, not in C.
  assert run["eval_tokens"] == 4096 and len(run["eval_sha256"]) == 64
  assert run["eval_loss_se"] == recs[-1]["eval_loss_se"]
  assert 0 < run["eval_loss_se"] < 0.2 * run["eval_loss"]
  assert run["eval_flops"] == pytest.approx(
      2 * run["flops_per_token"] / 3 * 128 * 32)
  assert run["flops"] == pytest.approx(run["flops_per_token"] * 60 * 8 * 32)
  assert run["epochs"] == pytest.approx(60 * 8 * 32
                                        / run["unique_train_tokens"])
  assert run["unique_train_tokens"] == run["data"]["n_train_rows"] * 32
  assert len(run["data"]["corpus"]["sha256"]) == 64
  assert run["params"]["total"] == (run["params"]["embedding"]
                                    + run["params"]["non_embedding"])
  assert run["versions"]["jax"]
  assert os.path.isdir(os.path.join(workdir, "tb"))
  assert os.path.isfile(os.path.join(workdir, "tokenizer.json"))


def test_runs_with_other_batch_size_and_seed_score_the_same_tokens(
    trained, tmp_path):
  from lm.trainer import train
  workdir, meta = trained
  other = train(micro_config(steps=10, batch_size=4, seed=3, eval_every=0,
                             eval_batch_size=48), str(tmp_path), verbose=False)
  assert other["eval_sha256"] == meta["eval_sha256"]
  assert other["eval_tokens"] == meta["eval_tokens"] == 4096
  assert other["eval"]["n_rows"] == meta["eval"]["n_rows"] == 128
  assert other["eval"]["batch_size"] == 48 != meta["eval"]["batch_size"]
  assert other["data"]["split"] == meta["data"]["split"]
  assert other["eval_loss"] > meta["eval_loss"]   # 10 steps vs 60: worse


def test_validation_loss_falls(trained):
  workdir, _ = trained
  recs = [r for r in _records(workdir) if "eval_loss" in r]
  # Uniform guessing over 257 byte ids costs log(257) = 5.55 nats.
  assert recs[-1]["eval_loss"] < recs[0]["eval_loss"] < math.log(257)
  assert recs[-1]["eval_loss"] < 3.5


def test_sample_from_checkpoint(trained):
  from lm.sample import generate, load_run
  workdir, _ = trained
  mc, params, tok, step = load_run(workdir)
  assert step == 60
  a = generate(mc, params, tok, "def ", max_tokens=20, temperature=0.0)
  b = generate(mc, params, tok, "def ", max_tokens=20, temperature=0.0)
  assert a == b and isinstance(a, str)
  out = run_cli("lm.sample", f"--workdir={workdir}", "--prompt=import ",
                "--max_tokens=10", "--seed=1")
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.startswith("import ")


def test_rerun_of_finished_run_is_a_no_op(trained):
  from lm.trainer import train
  workdir, meta = trained
  again = train(micro_config(steps=60, ckpt_every=30), workdir, verbose=False)
  assert again["eval_loss"] == meta["eval_loss"]
  assert again["train_loss"] == meta["train_loss"]  # not recomputed, not NaN
  assert again["wall_time_s"] == meta["wall_time_s"]
  assert [r["step"] for r in _records(workdir)][-1] == 60


def test_changed_config_on_existing_workdir_is_refused(trained):
  from lm.trainer import train
  workdir, _ = trained
  cfg = micro_config(steps=60, ckpt_every=30)
  cfg.model.d_model = 64
  cfg.model.n_heads = 4
  with pytest.raises(ConfigError, match="model.d_model"):
    train(cfg, workdir, verbose=False)


def test_steps_per_call_change_on_resume_is_refused(trained):
  """steps_per_call changes the compiled program, so it is part of the run."""
  from lm.trainer import train
  workdir, _ = trained
  with pytest.raises(ConfigError, match="steps_per_call"):
    train(micro_config(steps=60, ckpt_every=30, steps_per_call=3), workdir,
          verbose=False)


def test_nan_loss_marks_run_diverged(tmp_path):
  from lm.trainer import TrainingDiverged, train
  cfg = micro_config(steps=40, lr=1e30, warmup_steps=1, grad_clip=1e30)
  with pytest.raises(TrainingDiverged):
    train(cfg, str(tmp_path), verbose=False)
  run = json.load(open(tmp_path / "run.json"))
  assert run["status"] == "diverged"


CLI = ["--config=lm/configs/tiny.py"]


@pytest.mark.parametrize("overrides,needle", [
    (["--config.train.nonsense=1"], "unknown config key"),
    (["--config.model.n_heads=5"], "must divide"),
    (["--config.train.batch_size=0"], "positive"),
    (["--config.model.d_model=-8"], "positive"),
    (["--config.data.source=files", "--config.data.path=tests/does_not_exist"],
     "not a file or directory"),
    (["--config.data.source=tfds", "--config.data.tfds_name=lm1b",
      "--config.data.tfds_data_dir=/nonexistent/tfds"], "tfds_data_dir"),
])
def test_cli_bad_input_one_line_error(tmp_path, overrides, needle):
  out = run_cli("lm.train", *CLI, f"--workdir={tmp_path}/w", *overrides)
  assert out.returncode == 2, out.stderr[-2000:]
  lines = [l for l in out.stderr.strip().splitlines() if l.strip()]
  assert lines[-1].startswith("error: ") and needle in lines[-1], out.stderr
  assert sum(l.startswith("error") for l in lines) == 1
  assert "Traceback" not in out.stderr


def test_cli_empty_corpus(tmp_path):
  empty = tmp_path / "empty"
  empty.mkdir()
  out = run_cli("lm.train", *CLI, f"--workdir={tmp_path}/w",
                "--config.data.source=files", f"--config.data.path={empty}")
  assert out.returncode == 2
  assert out.stderr.strip().splitlines()[-1].startswith("error: ")


def test_cli_diverged_exit_code(tmp_path):
  out = run_cli("lm.train", *CLI, f"--workdir={tmp_path}/w",
                "--config.train.lr=1e30", "--config.train.grad_clip=1e30",
                "--config.train.steps=20", "--config.train.warmup_steps=1",
                "--config.data.max_corpus_bytes=500000",
                "--config.data.seq_len=32", "--config.train.eval_tokens=2048",
                "--config.train.progress=False")
  assert out.returncode == 3, out.stderr[-2000:]
  assert "diverged" in out.stderr.strip().splitlines()[-1]


def test_max_epochs_refuses_before_training(tmp_path):
  from lm.trainer import train
  workdir = tmp_path / "w"
  # 60 x 8 x 32 = 15,360 tokens of ~1M unique: ~0.016 epochs.
  with pytest.raises(ConfigError) as e:
    train(micro_config(max_epochs=0.01), str(workdir), verbose=False)
  msg = str(e.value)
  assert "\n" not in msg and "train.max_epochs=0.01" in msg
  assert "more unique tokens" in msg
  # Refused before writing anything: at most the workdir lock was taken.
  assert not workdir.exists() or [p.name for p in workdir.iterdir()] == [
      ".lock"]
  with pytest.raises(ConfigError, match="max_epochs"):
    train(micro_config(max_epochs=-1.0), str(workdir), verbose=False)
