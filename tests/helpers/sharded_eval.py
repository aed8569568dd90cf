"""Eval results (lm.evaluate) on a mesh spanning 2 processes x 4 CPU devices,
printed as one 'RESULT {json}' line; tests/test_eval.py compares them with one device in-process.

  python -m tests.helpers.sharded_eval PID PORT
"""
import json
import sys

import jax
import numpy as np

N_ROWS, T, V = 100, 16, 64   # 100 rows: batches of 7 or 24 need padding


def result(mesh_shape, devices, batch_size, pi=0, pc=1):
  from lm import evaluate, sharding, step as step_lib
  from lm.config import DEFAULT_RULES, MeshConfig, ModelConfig
  from lm.data.eval_set import EvalSet, rows_sha256
  mc = ModelConfig(vocab_size=V, d_model=32, n_layers=1, n_heads=4, d_ff=64,
                   max_seq_len=T).validate()
  mesh = sharding.make_mesh(MeshConfig(shape=mesh_shape), devices=devices)
  c = step_lib.compiled_for(mc, step_lib.StepOptions(), mesh, DEFAULT_RULES)
  params = c.init(jax.random.key(0)).params
  rng = np.random.default_rng(0)
  rows = rng.integers(0, V, (N_ROWS, T + 1)).astype(np.int32)
  rows[::3] = rows[0]  # repeated rows: row losses differ more than by noise
  es = EvalSet(rows=rows, doc_index=np.arange(N_ROWS) // 7,
               sha256=rows_sha256(rows), n_tokens=N_ROWS * T, rule="test")
  ev = evaluate.Evaluator(c, es, batch_size, flops_per_token=3.0,
                          process_index=pi, process_count=pc)
  r = ev(params)
  return {"loss": r.loss, "se": r.se, "se_seq": r.se_per_sequence,
          "flops": r.flops, "batch_size": ev.batch_size}


def main():
  pid, port = int(sys.argv[1]), int(sys.argv[2])
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}",
                             num_processes=2, process_id=pid)
  assert jax.device_count() == 8 and jax.local_device_count() == 4
  # (data, fsdp, tensor) = (2, 2, 2): batch rows over 4 shards, weights over
  # fsdp and tensor; each process feeds 12 of every 24 eval rows.
  print("RESULT " + json.dumps(result((2, 2, 2), jax.devices(), 24, pid, 2)),
        flush=True)  # gloo logs to stdout too


if __name__ == "__main__":
  main()
