"""experiments.cosine_equivalent on a synthetic WSD-trunk workdir whose
curves follow a known multi-power law: the predicted cosine-equivalent eval
losses must match the law's own cosine losses (+ the eval offset), with all
branches and with k = 2 branches per trunk."""
import json
import os

import numpy as np

from experiments import cosine_equivalent as ce
from scaling.loss_curve import data, laws

TRUE = dict(L0=2.0, A=0.8, alpha=0.5, B=10.0, C=2.0, beta=0.6, gamma=0.6)
TRAIN = dict(lr=1e-2, warmup_steps=20, min_lr_ratio=0.1,
             cooldown_fraction=0.2, cooldown_shape="1-sqrt")
STEPS = (400, 600, 900, 1300)
OFFSET = 0.05      # eval loss - train loss


def _law(sched, S, steps):
  lr = data.schedule_lr(sched, S, **{k: TRAIN[k] for k in (
      "lr", "min_lr_ratio", "cooldown_fraction", "cooldown_shape")},
      warmup_steps=TRAIN["warmup_steps"])
  c = data.LossCurve("x", lr, np.asarray(steps), np.ones(len(steps)))
  return laws.predict(laws.LAWS["multipower"], TRUE, [c])[0]


def _write_run(d, S, logged, loss_of_mid):
  os.makedirs(d, exist_ok=True)
  with open(os.path.join(d, "run.json"), "w") as f:
    json.dump({"config": {"train": dict(TRAIN, steps=S)}}, f)
  mids = [(a + b) // 2 for a, b in zip(logged[:-1], logged[1:])]
  L = loss_of_mid(mids)
  with open(os.path.join(d, "metrics.jsonl"), "w") as f:
    for s, l in zip(logged[1:], L):
      f.write(json.dumps({"step": int(s), "loss": float(l)}) + "\n")


def _workdir(root):
  P = [S - int(round(0.2 * S)) for S in STEPS]
  trunk = os.path.join(root, "trunks", "T0")
  logged = list(range(0, max(P) + 1, 20))
  _write_run(trunk, max(STEPS), logged,
             lambda m: _law("wsd", max(STEPS), m))
  records = []
  for S, p in zip(STEPS, P):
    rid = f"R{S}"
    lg = [p] + list(range((p // 20 + 1) * 20, S, 20)) + [S]
    _write_run(os.path.join(root, "runs", rid), S, lg,
               lambda m, S=S: _law("wsd", S, m))
    records.append(dict(run_id=rid, trunk_id="T0", status="ok", steps=S,
                        branch_step=p, C=1e10 * S, N=1e4, D=S * 512.0,
                        budget=1e10 * S,
                        eval_loss=float(_law("wsd", S, [S])[0]) + OFFSET))
  return records


def test_cosine_equivalent_recovers_the_laws_cosine_losses(tmp_path):
  records = _workdir(str(tmp_path))
  truth = {f"R{S}": float(_law("cosine", S, [S])[0]) + OFFSET for S in STEPS}
  for k in (None, 2):
    out = ce.predict_points(str(tmp_path), records, branches=k, bootstrap=0)
    assert len(out["points"]) == len(STEPS)
    meas = [p["measured"] for p in out["points"]]
    assert sum(meas) == (len(STEPS) if k is None else 2)
    for p in out["points"]:
      assert np.isfinite(p["delta_law"])
      assert abs(p["loss_cosine_pred"] - truth[p["run_id"]]) < 2e-3
    assert out["trunks"][0]["n_branches_used"] == sum(meas)


def test_spread_keeps_the_ends():
  assert ce._spread(9, 2) == [0, 8]
  assert ce._spread(9, 3) == [0, 4, 8]
  assert ce._spread(3, None) == [0, 1, 2]
