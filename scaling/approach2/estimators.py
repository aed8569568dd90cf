"""Per-budget estimators of the IsoFLOP minimum (Chinchilla Approach 2).

Each estimator locates, for one budget, the minimum of loss against log10 N
from the budget's runs, for many replicates at once:

  locate(x (n,), y (R, n), w (R, n), **options)
      -> dict(x_opt (R,) log10 N*, L_opt (R,), ok (R,) a minimum was found,
              inside (R,) it is strictly inside the sampled sizes[, coef])

x are log10 N of the budget's runs, y their losses (one row per replicate:
the data itself, or loss-perturbed / resampled copies) and w the runs'
multiplicities (0 = absent from that replicate). Seed repeats (several runs
at one size) are handled by every estimator: least squares weighs them
naturally, and the interpolating estimators average them first.

Registry (``ESTIMATORS``), one entry each:
  parabola        quadratic in log10 N over all points (Hoffmann et al. 2022,
                  Sec. 3.2; Llama Team 2024 Sec. 3.2.1).
  local_parabola  the quadratic over the k sizes nearest the observed
                  minimum (k = 5 by default, at most all sizes but one) that
                  lie within ``window_decades`` (0.75) of it in log10 N (but
                  at least the 3 nearest), so the far wings of a wide or
                  drifting grid (where loss is not parabolic in log N) do not
                  pull the vertex. The default, chosen by
                  benchmarks/approach2_bias.py (docs/estimators.md).
  akima           an Akima spline of log L against log N, minimised on a fine
                  geometric grid inside the sampled range (Porian et al.
                  2024, arXiv:2406.19146, App.; scipy's Akima1DInterpolator);
                  here the grid's limit, the spline's exact minimum.
  huber_parabola  Marin's robust quadratic: Huber(delta=1) on the loss
                  residuals (marin-community/marin scaling_laws/
                  isoflop_analysis.py robust_quad_logx), solved here by IRLS.

Edge rule (the caller drops such budgets with a warning): ``inside`` is False
when the located minimum is not strictly inside the sampled sizes.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

DEFAULT_ESTIMATOR = "local_parabola"   # chosen by benchmarks/approach2_bias.py
LOCAL_K = 5
# Half-width (decades of N) of local_parabola's window: the loss of the
# study's laws rises ~0.2 nats 0.75 decade from the optimum, about where
# e^(-alpha x) + (alpha/beta) e^(beta x) stops being quadratic in x
# (docs/estimators.md, "the window").
LOCAL_WINDOW_DECADES = 0.75
HUBER_DELTA = 1.0      # Marin robust_quad_logx default.
_IRLS_ITERS = 50


def _sizes(x: np.ndarray):
  """Distinct sizes (S,) and the index of each point's size (n,)."""
  xs, inv = np.unique(np.round(x, 9), return_inverse=True)
  return xs, inv


def _size_means(x, y, w):
  """Weighted mean loss per distinct size: xs (S,), ybar (R, S), present (R, S)."""
  xs, inv = _sizes(x)
  R, S = w.shape[0], xs.size
  sw = np.zeros((R, S))
  swy = np.zeros((R, S))
  np.add.at(sw.T, inv, w.T)
  np.add.at(swy.T, inv, (w * y).T)
  present = sw > 0
  with np.errstate(invalid="ignore", divide="ignore"):
    ybar = np.where(present, swy / sw, np.nan)
  return xs, inv, ybar, present


def quadratic_ls(x, y, w):
  """Weighted quadratic least squares, batched over replicates.

  Returns coef (R, 3) [c2, c1, c0] in uncentred x, vertex (R,), L_min (R,),
  ok (R,) (>= 3 distinct sizes with weight, curvature > 0).
  """
  xbar = x.mean()
  xc = x - xbar
  y = np.broadcast_to(y, w.shape)
  S = np.stack([(w * xc**k).sum(-1) for k in range(5)], -1)        # (R, 5)
  T = np.stack([(w * xc**k * y).sum(-1) for k in (2, 1, 0)], -1)  # (R, 3)
  M = np.stack([S[:, [4, 3, 2]], S[:, [3, 2, 1]], S[:, [2, 1, 0]]], -2)
  _, inv = _sizes(x)
  present = np.zeros((w.shape[0], inv.max() + 1))
  np.add.at(present.T, inv, (w > 0).T.astype(np.float64))
  enough = (present > 0).sum(-1) >= 3
  M = np.where(enough[:, None, None], M, np.eye(3))
  c = np.linalg.solve(M, T[..., None])[..., 0]                    # centred
  c2, c1, c0 = c[:, 0], c[:, 1], c[:, 2]
  ok = enough & (c2 > 0)
  safe_c2 = np.where(ok, c2, 1.0)
  # Hoffmann 2022 Sec. 3.2: a parabola per IsoFLOP profile, optimum at vertex.
  v_c = -c1 / (2.0 * safe_c2)
  L_min = c0 - c1**2 / (4.0 * safe_c2)
  coef = np.stack([c2, c1 - 2 * c2 * xbar, c0 - c1 * xbar + c2 * xbar**2], -1)
  return coef, np.where(ok, v_c + xbar, np.nan), np.where(ok, L_min, np.nan), ok


def _inside(x, w, x_opt):
  xs = np.where(w > 0, x, np.nan)
  with np.errstate(invalid="ignore"):
    return (x_opt > np.nanmin(xs, -1)) & (x_opt < np.nanmax(xs, -1))


def locate_parabola(x, y, w):
  coef, v, L, ok = quadratic_ls(x, y, w)
  return dict(x_opt=v, L_opt=L, ok=ok, inside=ok & _inside(x, w, v),
              coef=coef)


def locate_local_parabola(x, y, w, k: int = LOCAL_K,
                          window_decades: float = LOCAL_WINDOW_DECADES):
  """Quadratic over the sizes nearest the observed minimum.

  Uses the min(k, S - 1) distinct sizes nearest (in log N) the size with the
  lowest mean loss, S the sizes present, and of those only the ones within
  ``window_decades`` of it (but always at least the 3 nearest): the fit
  leaves out at least the farthest size, so it stays local on every grid
  (with S <= k it would be the global parabola, whose vertex the simulation
  study shows biased on drifting grids), and on a sparse grid (sizes ~0.6
  decade apart) it does not reach into the wings where the profile is not
  quadratic. Equidistant sizes are ranked by their mean loss (the lower,
  nearer the minimum, first). ``window_decades=inf`` disables the window.
  """
  if int(k) < 3:
    raise ValueError(f"local_parabola needs k >= 3 sizes, got {k}")
  if not float(window_decades) > 0:
    raise ValueError("local_parabola needs window_decades > 0, got "
                     f"{window_decades}")
  xs, inv, ybar, present = _size_means(x, y, w)
  best = np.argmin(np.where(present, ybar, np.inf), -1)            # (R,)
  dist = np.abs(xs[None, :] - xs[best][:, None])
  dist = np.where(present, dist, np.inf)
  n_present = present.sum(-1)
  k_eff = np.maximum(3, np.minimum(int(k), n_present - 1))        # (R,)
  # Rank by distance, ties by mean loss (lower first).
  tie = np.where(present, ybar, np.inf)
  order = np.lexsort((tie, np.round(dist, 9)), axis=-1)
  rank = np.argsort(order, -1)
  within = dist <= float(window_decades) + 1e-9
  chosen = present & (rank < k_eff[:, None]) & (within | (rank < 3))
  wk = w * chosen[:, inv]
  coef, v, L, ok = quadratic_ls(x, y, wk)
  first = np.argmax(present, -1)
  last = xs.size - 1 - np.argmax(present[:, ::-1], -1)
  observed_edge = (best == first) | (best == last)
  inside = ok & _inside(x, w, v) & ~observed_edge & (n_present >= 3)
  return dict(x_opt=v, L_opt=L, ok=ok, inside=inside, coef=coef,
              window=chosen)


def locate_huber_parabola(x, y, w, delta: float = HUBER_DELTA):
  """Quadratic minimising sum_i w_i Huber_delta(y_i - q(x_i)) (IRLS)."""
  y = np.broadcast_to(y, w.shape)
  coef, v, L, ok = quadratic_ls(x, y, w)
  for _ in range(_IRLS_ITERS):
    r = y - (coef[:, :1] * x**2 + coef[:, 1:2] * x + coef[:, 2:])
    # Huber 1964 IRLS weight: 1 inside [-delta, delta], delta/|r| outside.
    rw = np.minimum(1.0, delta / np.maximum(np.abs(r), 1e-300))
    if np.all(rw == 1.0):
      break                     # every residual in the quadratic zone: LS.
    new, v, L, ok = quadratic_ls(x, y, w * rw)
    change = np.max(np.abs(new - coef) / (1.0 + np.abs(coef)))
    coef = new
    if change < 1e-10:
      break
  return dict(x_opt=v, L_opt=L, ok=ok, inside=ok & _inside(x, w, v),
              coef=coef)


def _akima_min(xs, logy_SxR):
  """Exact minimum of the Akima spline of each column over [xs[0], xs[-1]].

  Porian et al. minimise the spline on a geometric grid of 25 points per
  sampled interval; the spline is a cubic on each interval, so its minimum
  is taken here exactly (the grid's limit): at a breakpoint or at a root of
  the cubic's derivative inside an interval. Returns x_opt (R,), log L at
  it (R,), and edge (R,): the minimum is at the first or last sampled size.
  """
  from scipy.interpolate import Akima1DInterpolator
  spline = Akima1DInterpolator(xs, logy_SxR, axis=0)
  c = spline.c                                    # (4, S-1, R), local variable
  h = np.diff(xs)[:, None]                        # (S-1, 1)
  # d/dt (c0 t^3 + c1 t^2 + c2 t + c3) = 3 c0 t^2 + 2 c1 t + c2.
  qa, qb, qc = 3 * c[0], 2 * c[1], c[2]
  disc = qb**2 - 4 * qa * qc
  sq = np.sqrt(np.maximum(disc, 0.0))
  with np.errstate(divide="ignore", invalid="ignore"):
    roots = [np.where(np.abs(qa) > 1e-300, (-qb + s) / (2 * qa), -qc / qb)
             for s in (sq, -sq)]
  cand_t = [np.zeros_like(h + qa), np.broadcast_to(h, qa.shape)]
  cand_t += [np.where((disc >= 0) & (t > 0) & (t < h), t, 0.0) for t in roots]
  t = np.stack(cand_t)                            # (4, S-1, R)
  val = ((c[0] * t + c[1]) * t + c[2]) * t + c[3]
  x = xs[:-1, None] + t
  flat_val = val.reshape(-1, val.shape[-1])
  k = np.argmin(flat_val, 0)
  cols = np.arange(val.shape[-1])
  x_opt = x.reshape(-1, val.shape[-1])[k, cols]
  edge = (x_opt <= xs[0] + 1e-12) | (x_opt >= xs[-1] - 1e-12)
  return x_opt, flat_val[k, cols], edge


def locate_akima(x, y, w):
  """Akima spline of log L vs log10 N (seed repeats averaged first)."""
  xs, _, ybar, present = _size_means(x, y, w)
  R = w.shape[0]
  x_opt = np.full(R, np.nan)
  L_opt = np.full(R, np.nan)
  ok = np.zeros(R, bool)
  inside = np.zeros(R, bool)
  # Replicates with the same set of sizes present share one vectorised spline.
  patterns, group = np.unique(present, axis=0, return_inverse=True)
  for g, pat in enumerate(patterns):
    rows = np.flatnonzero(group.ravel() == g)
    if pat.sum() < 3:
      continue
    logy = np.log(ybar[np.ix_(rows, np.flatnonzero(pat))]).T    # (S', R')
    xo, lo, edge = _akima_min(xs[pat], logy)
    x_opt[rows], L_opt[rows] = xo, np.exp(lo)
    ok[rows] = True
    inside[rows] = ~edge
  return dict(x_opt=x_opt, L_opt=L_opt, ok=ok, inside=inside)


def _quadratic_profile(found, x, grid, y=None):
  return np.polyval(found["coef"][0], grid)


def _akima_profile(found, x, grid, y=None):
  from scipy.interpolate import Akima1DInterpolator
  xs, _, ybar, _ = _size_means(x, np.atleast_2d(y), np.ones((1, x.size)))
  return np.exp(Akima1DInterpolator(xs, np.log(ybar[0]))(grid))


@dataclasses.dataclass(frozen=True)
class Estimator:
  """One registered per-budget estimator.

  ``locate`` finds the minima (see module docstring); ``profile(found, x,
  grid, y)`` evaluates the fitted loss curve of a single-replicate fit on a
  log10 N grid, for plots.
  """
  name: str
  label: str
  citation: str
  locate: Callable[..., Dict[str, np.ndarray]]
  options: Tuple[str, ...] = ()   # keyword options ``locate`` accepts
  profile: Callable[..., np.ndarray] = None

  def curve(self, found, x, y, n: int = 100):
    """(log10 N grid, fitted loss) over the sampled sizes of one budget."""
    grid = np.linspace(np.min(x), np.max(x), n)
    return grid, self.profile(found, x, grid, y=y)

  def __call__(self, x, y, w, **options) -> Dict[str, np.ndarray]:
    unknown = sorted(set(options) - set(self.options))
    if unknown:
      raise ValueError(f"estimator {self.name!r} takes no option(s) "
                       f"{unknown} (valid: {list(self.options) or 'none'})")
    y = np.atleast_2d(np.asarray(y, np.float64))
    w = np.atleast_2d(np.asarray(w, np.float64))
    shape = np.broadcast_shapes(y.shape, w.shape)
    y, w = np.broadcast_to(y, shape), np.broadcast_to(w, shape)
    return self.locate(np.asarray(x, np.float64), y, w, **options)

  def resolved(self, options: Optional[Dict[str, Any]] = None
               ) -> Dict[str, Any]:
    """Every option ``locate`` takes, its default updated by ``options``."""
    params = inspect.signature(self.locate).parameters
    out = {k: params[k].default for k in self.options}
    out.update(options or {})
    return out

  def options_text(self, options: Optional[Dict[str, Any]] = None) -> str:
    """'k=5, window_decades=0.75': every option's value, defaults included."""
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in sorted(self.resolved(options).items()))

  def describe(self, options: Optional[Dict[str, Any]] = None) -> str:
    """The label with every option's value, defaults included."""
    opts = self.options_text(options)
    return self.label + (f" ({opts})" if opts else "")


ESTIMATORS: Dict[str, Estimator] = {}


def register(est: Estimator) -> Estimator:
  if est.name in ESTIMATORS:
    raise ValueError(f"estimator {est.name!r} registered twice")
  ESTIMATORS[est.name] = est
  return est


register(Estimator(
    "parabola", "parabola in log N over all sizes",
    "Hoffmann et al. 2022, arXiv:2203.15556, Sec. 3.2", locate_parabola,
    profile=_quadratic_profile))
register(Estimator(
    "local_parabola", "parabola over the k sizes nearest the observed "
    "minimum, within window_decades of it",
    "local quadratic around the observed minimum (this package; cf. Hoffmann "
    "et al. 2022 Sec. 3.2)", locate_local_parabola, ("k", "window_decades"),
    profile=_quadratic_profile))
register(Estimator(
    "akima", "Akima spline of log L vs log N, minimised on a fine grid",
    "Porian et al. 2024, arXiv:2406.19146", locate_akima,
    profile=_akima_profile))
register(Estimator(
    "huber_parabola", "parabola fitted with Huber(delta) on the residuals",
    "Marin isoflop_analysis.py robust_quad_logx (marin-community/marin)",
    locate_huber_parabola, ("delta",), profile=_quadratic_profile))


@dataclasses.dataclass(frozen=True)
class EstimatorOption:
  """One estimator option, reachable from both command lines.

  ``scaling.fit`` defines the flag ``--<setting>`` from it and
  ``experiments.analysis_settings`` the field ``analysis.<setting>`` (and
  ``experiments.analyze`` passes it on): adding an entry to ``OPTIONS``
  makes a new keyword of an estimator's ``locate`` reachable from both
  without editing either.
  """
  estimator: str
  """The estimator whose ``locate`` takes it (a key of ESTIMATORS)."""
  name: str
  """The keyword of ``locate``."""
  setting: str
  """Flag and ``analysis`` field name, e.g. 'isoflop_k'."""
  kind: type
  """int or float."""
  default: Any
  """Default of the flag and field; None: not passed (``locate``'s own
  default applies)."""
  help: str
  """One line for the flag's help and the config docs."""
  lower_bound: float
  """Smallest valid value (flag bound and config check)."""
  strict: bool = False
  """True: the value must exceed lower_bound (the flag uses lower_bound +
  its smallest step)."""
  what: str = ""
  """The config error's 'must be ...' text."""
  flag_lower_bound: Optional[float] = None
  """The absl flag's lower_bound (None: unbounded; the fit checks)."""

  def __post_init__(self):
    if self.kind not in (int, float):
      raise ValueError(f"option {self.setting}: kind must be int or float")
    if self.name not in inspect.signature(get(self.estimator).locate).parameters:
      raise ValueError(f"option {self.setting}: {self.estimator}'s locate "
                       f"takes no {self.name!r}")

  def valid(self, value) -> bool:
    """Whether ``value`` is acceptable (None only when the default is None)."""
    if value is None:
      return self.default is None
    if isinstance(value, bool) or not isinstance(
        value, (int,) if self.kind is int else (int, float)):
      return False
    return value > self.lower_bound if self.strict else value >= self.lower_bound


def estimator_options(values: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
  """{estimator: {option: value}} from {setting: value} (None values are
  left out: the estimator's default applies)."""
  out: Dict[str, Dict[str, Any]] = {}
  for o in OPTIONS:
    v = values.get(o.setting, o.default)
    if v is not None:
      out.setdefault(o.estimator, {})[o.name] = o.kind(v)
  return out


def get(name: str) -> Estimator:
  if name not in ESTIMATORS:
    raise ValueError(f"unknown isoflop estimator {name!r} (valid: "
                     f"{', '.join(ESTIMATORS)}, or 'all')")
  return ESTIMATORS[name]


# Options reachable from the command lines (flags and analysis fields are
# generated from these entries; see EstimatorOption).
OPTIONS: Tuple[EstimatorOption, ...] = (
    EstimatorOption("local_parabola", "k", "isoflop_k", int, LOCAL_K,
                    "local_parabola: sizes nearest the observed minimum",
                    lower_bound=3, what="an integer >= 3"),
    EstimatorOption("local_parabola", "window_decades",
                    "isoflop_window_decades", float, LOCAL_WINDOW_DECADES,
                    "local_parabola: largest distance (decades of N) from the "
                    "observed minimum of a size in its window (the 3 nearest "
                    "always count)", lower_bound=0.0, strict=True,
                    what="a positive number of decades", flag_lower_bound=1e-9),
    EstimatorOption("huber_parabola", "delta", "isoflop_huber_delta", float,
                    None, "huber_parabola: Huber threshold delta on the "
                    f"log-loss residuals (default: {HUBER_DELTA:g}, Marin's "
                    "robust_quad_logx)", lower_bound=0.0, strict=True,
                    what="a positive number or None", flag_lower_bound=1e-12),
)
