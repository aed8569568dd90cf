r"""Schedule-aware loss laws, evaluated at the logged steps only.

Both laws are sums over the steps k where the learning rate changes,
weighted by the change eta_{k-1} - eta_k and a kernel of the learning-rate
area S_k(t) = sum_{tau=k..t} eta_tau (multi-power) or of t - k (Tissue):

  multipower (Luo et al. 2025, ICLR, Eq. 4 / their src/models.py):
    L(t) = L0 + A S1(t)^-alpha
           - B sum_{k<=t} (eta_{k-1} - eta_k) (1 - (1 + C eta_k^-gamma S_k(t))^-beta)
  tissue (Tissue et al. 2024, arXiv:2408.11029, Eq. 1):
    L(t) = L0 + A S1(t)^-alpha - C S2(t),  S2(t) = sum_{i<=t} m_i,
    m_i = lambda m_{i-1} + (eta_{i-1} - eta_i)
        => S2(t) = sum_{k<=t} (eta_{k-1} - eta_k) (1 - lambda^{t-k+1}) / (1 - lambda)

Cost. Naively the multi-power sum is O(T^2) (every step against every
earlier step). Here it is a sum over *pairs* (logged point t, changing step
k <= t): steps where the rate is constant contribute nothing and are never
visited, and only the M logged steps are evaluated, O(M K). Far from t the
kernel is smooth in k, so with ``block > 1`` the changes more than
``window`` steps before t are merged in aligned blocks of ``block`` steps
(one pair per block and sign of the change, at the change-weighted
geometric mean of eta_k and means of S1(k-1) and of k; blocks whose eta_k
spread by more than 1.5x, i.e. the first steps of a warmup from 0, stay
exact), those more than window/4 back in blocks of
block/4, ..., down to blocks of 8 steps; the last few steps stay exact
(``levels``). On Luo et al.'s 25M curves at the published parameters the
blocked sum (block 64, window 1024) differs from the exact one by at most
7.5e-7 nats with 30x fewer pairs (0.75M vs 22.7M over the nine curves;
tests/test_loss_curve.py checks the bound).
Tissue's S2 counts decreases of the rate only (the annealing; warmup's
increases are left out, as S2 is the annealing area).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Sequence, Tuple

import jax.numpy as jnp
import numpy as np

from scaling.numerics.lbfgs import x64

BLOCK = 64
ETA_RTOL = 0.5    # a block merges only if max eta_k <= 1.5 min eta_k
WINDOW = 1024


@dataclasses.dataclass(frozen=True)
class Design:
  """Pairs (logged point m, change k) of a list of curves, concatenated.

  Attributes (numpy; M points, P pairs):
    S1_M: S1(t_m) = sum_{tau <= t_m} eta_tau.
    pm_P: the point of each pair.
    gap_P: eta_{k-1} - eta_k (summed over a block).
    eta_P: eta_k (change-weighted mean over a block).
    Pk_P: S1(k-1) (change-weighted mean over a block).
    dt_P: t_m - k (change-weighted mean over a block).
    curve_M: index of each point's curve.
  """
  S1_M: np.ndarray
  pm_P: np.ndarray
  gap_P: np.ndarray
  eta_P: np.ndarray
  Pk_P: np.ndarray
  dt_P: np.ndarray
  curve_M: np.ndarray

  def arrays(self) -> Dict[str, np.ndarray]:
    return {k: v for k, v in dataclasses.asdict(self).items()
            if k != "curve_M"}

  @property
  def n_pairs(self) -> int:
    return int(self.pm_P.size)


def _changes(lr_T: np.ndarray):
  """(k, eta_{k-1} - eta_k, eta_k, S1(k-1)) of every step k >= 1 whose rate
  differs from the previous step's."""
  P = np.cumsum(lr_T)
  k = np.nonzero(np.diff(lr_T))[0] + 1
  return k, lr_T[k - 1] - lr_T[k], lr_T[k], P[k - 1]


def _blocks(k, gap, eta, Pk, block):
  """Per (aligned block of ``block`` steps, sign of the change) aggregates:
  (block index, summed change, change-weighted means of eta_k, S1(k-1), k),
  and ``ok`` per block index: whether its eta_k vary by at most ETA_RTOL
  (blocks that do not, e.g. the first steps of a warmup from 0, stay exact:
  the kernel's eta^-gamma is far from linear there)."""
  sign = (gap > 0).astype(np.int64)
  key = (k // block) * 2 + sign
  uniq, inv = np.unique(key, return_inverse=True)
  w = np.abs(gap)
  wsum = np.bincount(inv, w, uniq.size)
  mean = lambda x: np.bincount(inv, w * x, uniq.size) / np.where(wsum > 0, wsum, 1)
  bid = k // block
  nb = int(bid.max()) + 1 if bid.size else 0
  lo, hi = np.full(nb, np.inf), np.zeros(nb)
  np.minimum.at(lo, bid, eta)
  np.maximum.at(hi, bid, eta)
  ok = hi <= (1.0 + ETA_RTOL) * lo
  eta_g = np.exp(mean(np.log(np.where(eta > 0, eta, 1.0))))   # geometric
  return (uniq // 2, np.bincount(inv, gap, uniq.size), eta_g, mean(Pk),
          mean(k.astype(np.float64)), ok)


def levels(block: int, window: int) -> Tuple[Tuple[int, int], ...]:
  """(block, window) levels, coarsest first: blocks of ``block`` steps more
  than ``window`` steps back, blocks of block/4 more than window/4 back,
  ... down to blocks of 8 (then exact)."""
  out, b, w = [], int(block), int(window)
  while b > 1:
    out.append((b, w))
    if b <= 8:
      break
    b, w = max(b // 4, 8), max(w // 4, 2 * max(b // 4, 8))
  return tuple(out)


def _point_pairs(t, k, g, e, pk, lv, blks):
  """The pairs of one logged step t: aligned blocks level by level, then
  the exact changes of the last few steps."""
  parts, lo = [], 0
  exact = np.zeros(k.size, bool)
  for (b, w), blk in zip(lv, blks):
    cut = max(((t - w) // b) * b, lo) if t > w else lo
    ok = blk[5]
    sel = ((blk[0] * b >= lo) & ((blk[0] + 1) * b <= cut)) & ok[blk[0]]
    parts.append((blk[1][sel], blk[2][sel], blk[3][sel], blk[4][sel]))
    exact |= (k >= lo) & (k < cut) & ~ok[k // b]
    lo = max(lo, cut)
  near = exact | ((k >= lo) & (k <= t))
  parts.append((g[near], e[near], pk[near], k[near].astype(np.float64)))
  return [np.concatenate(x) for x in zip(*parts)]


def design(curves: Sequence, block: int = BLOCK, window: int = WINDOW) -> Design:
  """The pairs of ``curves`` (LossCurve), exact for block <= 1."""
  lv = levels(block, window) if block > 1 else ()
  S1, pm, gap, eta, Pk, dt, cid = [], [], [], [], [], [], []
  offset = 0
  for ci, c in enumerate(curves):
    P = np.cumsum(c.lr_T)
    k, g, e, pk = _changes(c.lr_T)
    blks = [_blocks(k, g, e, pk, b) for b, _ in lv]
    for j, t in enumerate(c.step_M):
      gg, ee, pp, kf = _point_pairs(int(t), k, g, e, pk, lv, blks)
      pm.append(np.full(gg.size, offset + j, np.int64))
      gap.append(gg)
      eta.append(ee)
      Pk.append(pp)
      dt.append(t - kf)
    S1.append(P[c.step_M])
    cid.append(np.full(c.step_M.size, ci, np.int64))
    offset += c.step_M.size
  cat = lambda xs, dt=np.float64: (np.concatenate(xs).astype(dt) if xs
                                   else np.zeros(0, dt))
  return Design(cat(S1), cat(pm, np.int64), cat(gap), cat(eta), cat(Pk),
                cat(dt), cat(cid, np.int64))


def _segment_sum(x_P, pm_P, M):
  # pm_P may arrive as float64 (scaling.numerics.lbfgs casts its data pytree).
  return jnp.zeros(M, x_P.dtype).at[pm_P.astype(jnp.int32)].add(x_P)


def multipower(p: Dict[str, jnp.ndarray], d: Dict[str, jnp.ndarray]):
  """Luo et al. 2025 multi-power law at the design's points."""
  M = d["S1_M"].shape[0]
  S_k = d["S1_M"][d["pm_P"].astype(jnp.int32)] - d["Pk_P"]              # S_k(t) = S1(t) - S1(k-1)
  x = p["C"] * d["eta_P"] ** (-p["gamma"]) * jnp.maximum(S_k, 0.0)
  G = -jnp.expm1(-p["beta"] * jnp.log1p(x))           # 1 - (1 + x)^-beta
  LD = _segment_sum(d["gap_P"] * G, d["pm_P"], M)
  return p["L0"] + p["A"] * d["S1_M"] ** (-p["alpha"]) - p["B"] * LD


def tissue(p: Dict[str, jnp.ndarray], d: Dict[str, jnp.ndarray]):
  """Tissue et al. 2024: L0 + A S1^-alpha - C S2 (annealing momentum lambda)."""
  M = d["S1_M"].shape[0]
  lam = p["lambda"]
  # (1 - lambda^(t-k+1)) / (1 - lambda): sum of the momentum's geometric tail.
  w = -jnp.expm1((d["dt_P"] + 1.0) * jnp.log(lam)) / (1.0 - lam)
  S2 = _segment_sum(jnp.maximum(d["gap_P"], 0.0) * w, d["pm_P"], M)
  return p["L0"] + p["A"] * d["S1_M"] ** (-p["alpha"]) - p["C"] * S2


@dataclasses.dataclass(frozen=True)
class Law:
  """One registry entry of the loss_curve family."""
  name: str
  params: Tuple[str, ...]          # paper names, fit.json order
  predict: Callable                # (params dict, design arrays) -> L_M
  citation: str
  label: str
  formula: str


LAWS: Dict[str, Law] = {l.name: l for l in (
    Law("multipower", ("L0", "A", "alpha", "B", "C", "beta", "gamma"),
        multipower,
        "Luo et al. 2025, 'A Multi-Power Law for Loss Curve Prediction Across "
        "Learning Rate Schedules', ICLR 2025, arXiv:2503.12811",
        "multi-power law L(t) = L0 + A S1^-alpha - LD(t) (Luo et al. 2025)",
        "L(t) = L0 + A S1(t)^-alpha - B sum_k (eta_{k-1} - eta_k) "
        "(1 - (1 + C eta_k^-gamma S_k(t))^-beta)"),
    Law("tissue", ("L0", "A", "alpha", "C", "lambda"), tissue,
        "Tissue et al. 2024, 'Scaling Law with Learning Rate Annealing', "
        "arXiv:2408.11029",
        "L(t) = L0 + A S1^-alpha - C S2 (Tissue et al. 2024)",
        "L(t) = L0 + A S1(t)^-alpha - C S2(t), S2 = sum_i m_i, "
        "m_i = lambda m_{i-1} + (eta_{i-1} - eta_i), decreases only"),
)}


def predict(law: Law, params: Dict[str, float], curves: Sequence,
            block: int = BLOCK, window: int = WINDOW) -> list:
  """Predicted loss at each curve's logged steps (numpy, float64)."""
  d = design(curves, block, window)
  with x64():
    arr = {k: jnp.asarray(v) for k, v in d.arrays().items()}
    pv = {k: jnp.asarray(float(v), jnp.float64) for k, v in params.items()}
    L = np.asarray(law.predict(pv, arr))
  return [L[d.curve_M == i] for i in range(len(curves))]
