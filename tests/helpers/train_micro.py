"""Trains tests.conftest.micro_config in WORKDIR (argv[1]); used by resume tests."""
import sys

from lm.trainer import train
from tests.conftest import micro_config

if __name__ == "__main__":
  train(micro_config(steps=int(sys.argv[2]), ckpt_every=10, log_every=10,
                     eval_every=0, steps_per_call=5),
        sys.argv[1], verbose=False)
