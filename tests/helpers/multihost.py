"""Emulated hosts: several CPU processes on 127.0.0.1 forming one JAX job.

Each process gets the explicit launch fields (``PREFIX.coordinator_address``,
``.num_processes``, ``.process_id``) on its command line, no wrapper.
"""
import os
import socket
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def start(cmd, n_processes, devices, prefix="--config.mesh"):
  """``n_processes`` copies of ``python -m *cmd`` forming one job (1: plain),
  each with ``devices`` simulated CPU devices."""
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  launch = [[]]
  if n_processes > 1:
    port = free_port()
    launch = [[f"{prefix}.coordinator_address=127.0.0.1:{port}",
               f"{prefix}.num_processes={n_processes}",
               f"{prefix}.process_id={i}"] for i in range(n_processes)]
  return [subprocess.Popen([sys.executable, "-m", *cmd, *extra], cwd=ROOT,
                           env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
          for extra in launch]


def wait(procs, timeout=600):
  """Waits for every process; asserts each exited 0 (shows its output if not)."""
  for p in procs:
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, (out + err)[-3000:]
