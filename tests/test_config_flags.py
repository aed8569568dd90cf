"""lm.config.config_dict / lm.config.flags: typed fields, locking, --config overrides."""
import glob
import os
import pickle
import textwrap

import pytest
from absl import flags

from lm.config import flags as config_flags
from lm.config.config_dict import ConfigDict, UnknownKeyError
from tests.conftest import ROOT


# ----------------------------------------------------------------------------
# ConfigDict

def _cd():
  return ConfigDict(dict(i=3, f=0.5, s="x", b=True, t=(1, 2), n=None,
                         sec=dict(k=1)))


def test_dicts_become_sections_and_round_trip():
  c = _cd()
  assert isinstance(c.sec, ConfigDict) and c.sec.k == 1 and c["sec"]["k"] == 1
  d = c.to_dict()
  assert type(d["sec"]) is dict and d["t"] == (1, 2)
  assert ConfigDict(d) == c and dict(c.sec) == {"k": 1}
  d["sec"]["k"] = 2                      # to_dict is a copy
  assert c.sec.k == 1
  assert '"t": [1, 2]' in c.to_json_best_effort()


@pytest.mark.parametrize("key,value,stored", [
    ("f", 2, 2.0), ("t", [3, 4], (3, 4)), ("n", "anything", "anything"),
    ("i", None, None), ("s", "y", "y"), ("b", False, False)])
def test_assignment_keeps_or_widens_the_type(key, value, stored):
  c = _cd()
  c[key] = value
  assert c[key] == stored and type(c[key]) is type(stored)


@pytest.mark.parametrize("key,value", [
    ("i", 1.5), ("i", "3"), ("i", True), ("b", 1), ("s", 3), ("t", 5),
    ("f", "0.1")])
def test_assignment_of_another_type_is_refused(key, value):
  c = _cd()
  with pytest.raises(TypeError, match=key):
    setattr(c, key, value)


def test_lock_refuses_new_keys_at_every_depth_and_names_valid_ones():
  c = _cd().lock()
  with pytest.raises(UnknownKeyError, match=r"'stpes'.*valid: b, f, i, n"):
    c.stpes = 10
  with pytest.raises(KeyError):
    c.sec["other"] = 1
  c.sec.k = 5                            # existing fields stay writable
  assert c.sec.k == 5 and c.is_locked and c.sec.is_locked
  assert not hasattr(c, "missing") and c.get("missing", 7) == 7
  with pytest.raises(AttributeError):
    c.missing
  c.unlock().new = 1
  assert c.new == 1 and not c.sec.is_locked


def test_pickle_keeps_content_and_lock():
  c = pickle.loads(pickle.dumps(_cd().lock()))
  assert c == _cd() and c.is_locked
  with pytest.raises(KeyError):
    c.zz = 1


# ----------------------------------------------------------------------------
# --config=file and --config.a.b=value

@pytest.fixture
def parse(tmp_path):
  path = tmp_path / "cfg.py"
  path.write_text(textwrap.dedent("""
      from lm.config.config_dict import ConfigDict
      def get_config():
        return ConfigDict(dict(train=dict(steps=10, lr=0.1, name="a",
                                          progress=True, shape=(-1, 1, 1),
                                          extra=None)))
      """))
  fv = flags.FlagValues()
  holder = config_flags.DEFINE_config_file("config", None, "test",
                                           flag_values=fv)
  flags.DEFINE_integer("other", 0, "a plain absl flag", flag_values=fv)

  def run(*args):
    rest = config_flags.parse(["prog", *args, f"--config={path}"], fv)
    return holder.value, rest, fv
  return run


def test_overrides_are_parsed_by_field_type(parse):
  cfg, rest, fv = parse("--config.train.steps=2e4", "--config.train.lr=1",
                        "--config.train.name=x=y", "--noconfig.train.progress",
                        "--config.train.shape=(2,4,1)",
                        "--config.train.extra=[1, 2]", "--other=3", "pos")
  t = cfg.train
  assert (t.steps, t.lr, t.name, t.progress, t.shape, t.extra) == (
      20000, 1.0, "x=y", False, (2, 4, 1), [1, 2])
  assert type(t.lr) is float and fv.other == 3 and rest == ["prog", "pos"]


def test_bool_forms_and_last_override_wins(parse):
  cfg, _, _ = parse("--config.train.progress=false", "--config.train.progress",
                    "--config.train.steps=5", "--config.train.steps=7")
  assert cfg.train.progress is True and cfg.train.steps == 7
  assert parse("--config.train.shape=4")[0].train.shape == (4,)


@pytest.mark.parametrize("arg,needle", [
    ("--config.train.stpes=1", "unknown config key train.stpes in "
                               "--config.train.stpes=1 (valid keys of train: "
                               "extra, lr, name, progress, shape, steps)"),
    ("--config.model.d=1", "unknown config key model.d"),
    ("--config.train.steps=1.5", "config.train.steps expects an integer, got "
                                 "'1.5'"),
    ("--config.train.steps=ten", "expects an integer"),
    ("--config.train.lr=fast", "config.train.lr expects a number"),
    ("--config.train.progress=maybe", "expects true or false"),
    ("--config.train.steps", "needs =value"),
    ("--noconfig.train.lr", "not boolean"),
    ("--config.train=1", "is a section"),
    ("--config.train.steps.x=1", "train.steps is a value, not a section"),
])
def test_bad_overrides_raise_one_line_naming_the_key(parse, arg, needle):
  with pytest.raises(flags.IllegalFlagValueError) as e:
    parse(arg)
  assert needle in str(e.value) and "\n" not in str(e.value)


def test_config_file_errors(tmp_path):
  with pytest.raises(ValueError, match="not found"):
    config_flags.load_config_file(str(tmp_path / "none.py"))
  (tmp_path / "bad.py").write_text("x = 1\n")
  with pytest.raises(ValueError, match="no get_config"):
    config_flags.load_config_file(str(tmp_path / "bad.py"))


CONFIG_FILES = sorted(glob.glob(os.path.join(ROOT, "lm", "configs", "*.py")) +
                      glob.glob(os.path.join(ROOT, "experiments", "configs",
                                             "*.py")))


@pytest.mark.parametrize("path", [p for p in CONFIG_FILES
                                  if not p.endswith("__init__.py")],
                         ids=os.path.basename)
def test_every_config_file_loads_and_converts(path):
  from lm.config import from_config_dict
  cfg = config_flags._ConfigFileParser(lock_config=True).parse(path)
  lm_cfg = cfg.lm if "sweep" in cfg else cfg
  if "sweep" in cfg:
    from experiments import planner
    planner.validate_sweep(cfg.sweep)
    lm_cfg = planner.make_plan(cfg).runs[0].lm_config(cfg.lm)
  full = from_config_dict(lm_cfg, vocab_size=257)
  assert full.train.steps > 0
  with pytest.raises(KeyError):
    cfg.nonexistent_key = 1            # locked like --config locks it


@pytest.mark.parametrize("module,args,needle", [
    ("lm.train", ["--config=lm/configs/tiny.py", "--config.train.steps=abc"],
     "config.train.steps expects an integer, got 'abc'"),
    ("experiments.isoflop", ["--config.sweep.n_sizes=4", "--plan_only",
                             "--config=experiments/configs/tiny_sweep.py",
                             "--config.lm.train.sed=1"],
     "unknown config key lm.train.sed"),
])
def test_cli_bad_override_is_one_error_line_exit_2(tmp_path, module, args,
                                                   needle):
  from tests.conftest import run_cli
  out = run_cli(module, f"--workdir={tmp_path}/w", *args, timeout=120)
  lines = [l for l in out.stderr.splitlines() if l.strip()]
  assert out.returncode == 2 and len(lines) == 1, out.stderr
  assert lines[0].startswith("error: ") and needle in lines[0], out.stderr
  assert not os.path.exists(tmp_path / "w")
