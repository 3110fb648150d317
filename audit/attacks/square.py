"""The Square attack (Andriushchenko et al. 2020): score-based black-box random search, L-inf and L2.

NumPy only: it needs nothing but `target.logits`, so it runs against the deployed engine on a box
without torch, and gradient masking (a rounding step, a non-differentiable op) does not stop it.

Margin loss z_y - max_{i != y} z_i, minimised; an image stops being queried once it is misclassified.
Segmentation (`objective=SEGMENTATION`): the loss is the fraction of correctly labelled valid pixels,
read from the engine's logits or its label map (so argmax-only engines are attacked too).
`queries` (default 1000 per restart; standard AutoAttack uses 5000) counts the model evaluations of
the search, the initialisation included. The square side follows the paper's schedule of p (the
fraction of pixels changed): p_init = 0.8 (AutoAttack's and torchattacks' default), halved at
10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 of 10,000 iterations, rescaled to `queries`.
- L-inf: vertical-stripe initialisation at +-eps; each step sets one random square per image (its
  own position) to +-eps per channel.
- L2: initialisation by a grid of the paper's centred "eta" patterns; each step moves the
  perturbation mass of a second square into a new eta-shaped square, keeping ||delta||_2 = eps
  (as the paper: both squares' positions and the pattern's orientation drawn per image, signs per
  image and channel; vectorised over the batch).
"""

from __future__ import annotations

import math

import numpy as np

from audit.attacks.budget import Budget
from audit.attacks.core import register_attack
from audit.attacks.objectives import margins

SQUARE_QUERIES = 1000
P_INIT = 0.8
_SCHEDULE = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)  # of 10,000 iterations: p halves after each


def p_selection(i: int, n_queries: int, p_init: float = P_INIT) -> float:
    """The fraction of pixels the square covers at iteration `i` of `n_queries`.

    Example:
        >>> p_selection(0, 1000), p_selection(10, 1000), p_selection(999, 1000)
        (0.8, 0.2, 0.0015625)
    """
    it = int(i / n_queries * 10000)
    return p_init / 2 ** sum(it > t for t in _SCHEDULE)


def _eta_half(a: int, b: int) -> np.ndarray:
    """Nested centred rectangles with weights 1 / (k + 1)^2, normalised (the paper's eta building block)."""
    m = np.zeros((a, b))
    ca, cb = a // 2, b // 2
    for k in range(max(ca, cb) + 1):
        m[max(ca - k, 0):min(ca + k + 1, a), max(cb - k, 0):min(cb + k + 1, b)] += 1.0 / (k + 1) ** 2
    return m / max(np.sqrt((m ** 2).sum()), 1e-12)


def eta(s: int, rng: np.random.Generator) -> np.ndarray:
    """An s x s pattern: +half over -half (or its transpose, at random), unit L2 norm."""
    if s < 2:
        return np.ones((s, s))
    m = np.concatenate([_eta_half(s // 2, s), -_eta_half(s - s // 2, s)])
    m /= np.sqrt((m ** 2).sum())
    return m.T if rng.random() > 0.5 else m


def _linf(target, x, y, eps, n_queries, rng, loss=margins):
    n, c, h, w = x.shape
    x_best = np.clip(x + eps * rng.choice([-1.0, 1.0], size=(n, c, 1, w)), 0, 1).astype(np.float32)
    m_best = loss(target.logits(x_best), y)
    used = np.ones(n, np.int64)
    rows, cols = np.arange(h), np.arange(w)
    for i in range(1, n_queries):
        idx = np.flatnonzero(m_best > 0)
        if not len(idx):
            break
        s = min(max(int(round(math.sqrt(p_selection(i, n_queries) * h * w))), 1), h, w)
        vh = rng.integers(0, h - s + 1, size=len(idx))[:, None]
        vw = rng.integers(0, w - s + 1, size=len(idx))[:, None]
        mask = (((rows >= vh) & (rows < vh + s))[:, None, :, None] & ((cols >= vw) & (cols < vw + s))[:, None, None, :])
        signs = eps * rng.choice([-1.0, 1.0], size=(len(idx), c, 1, 1))
        x_cur = x[idx]
        x_new = np.clip(np.where(mask, x_cur + signs, x_best[idx]), x_cur - eps, x_cur + eps)
        _query(target, np.clip(x_new, 0, 1).astype(np.float32), y, idx, x_best, m_best, used, loss)
    return x_best, m_best, used


def _l2_normalise(d: np.ndarray, eps: float) -> np.ndarray:
    n = np.sqrt((d.reshape(len(d), -1) ** 2).sum(1)).reshape(-1, 1, 1, 1)
    return d / np.maximum(n, 1e-12) * eps


def _l2(target, x, y, eps, n_queries, rng, loss=margins):
    n, c, h, w = x.shape
    s0 = max(min(h, w) // 5, 1)
    delta = np.zeros_like(x, dtype=np.float64)
    off_h, off_w = (h - s0 * (h // s0)) // 2, (w - s0 * (w // s0)) // 2
    for bh in range(h // s0):
        for bw in range(w // s0):
            r, q = off_h + bh * s0, off_w + bw * s0
            delta[:, :, r:r + s0, q:q + s0] += eta(s0, rng)[None, None] * rng.choice([-1.0, 1.0], size=(n, c, 1, 1))
    x_best = np.clip(x + _l2_normalise(delta, eps), 0, 1).astype(np.float32)
    m_best = loss(target.logits(x_best), y)
    used = np.ones(n, np.int64)
    for i in range(1, n_queries):
        idx = np.flatnonzero(m_best > 0)
        if not len(idx):
            break
        x_cur = x[idx].astype(np.float64)
        d = x_best[idx] - x_cur
        s = max(int(round(math.sqrt(p_selection(i, n_queries) * h * w))), 3)
        s = min(s + (s % 2 == 0), h, w)
        k = len(idx)
        (vh, vw), (vh2, vw2) = (_corner(rng, k, h, w, s) for _ in range(2))  # two squares per image
        win1, win2 = _window(vh, vw, s, c), _window(vh2, vw2, s, c)
        rows, cols = np.arange(h), np.arange(w)
        mask = np.zeros((k, 1, h, w), bool)
        for ch, cw in ((vh, vw), (vh2, vw2)):
            mask |= (((rows >= ch) & (rows < ch + s))[:, None, :, None] & ((cols >= cw) & (cols < cw + s))[:, None, None, :])
        w1 = d[win1]  # [k, c, s, s]: the first square of each image
        norm_w1 = np.sqrt((w1 ** 2).sum(axis=(2, 3), keepdims=True))
        norm_img = np.sqrt((d.reshape(k, -1) ** 2).sum(1)).reshape(-1, 1, 1, 1)
        norm_windows = np.sqrt(((d * mask) ** 2).sum(axis=(2, 3), keepdims=True))  # per channel
        new = _etas(s, k, rng) * rng.choice([-1.0, 1.0], size=(k, c, 1, 1)) + w1 / (norm_w1 + 1e-12)
        new /= np.sqrt((new ** 2).sum(axis=(2, 3), keepdims=True)) + 1e-12
        new *= np.sqrt(np.maximum(eps ** 2 - norm_img ** 2, 0) / c + norm_windows ** 2)
        d[win2] = 0
        d[win1] = new
        _query(target, np.clip(x_cur + _l2_normalise(d, eps), 0, 1).astype(np.float32), y, idx, x_best, m_best, used, loss)
    return x_best, m_best, used


def _corner(rng: np.random.Generator, k: int, h: int, w: int, s: int) -> tuple[np.ndarray, np.ndarray]:
    """The top-left corners of k random s x s squares in an h x w image, as [k, 1] columns."""
    return rng.integers(0, h - s + 1, size=k)[:, None], rng.integers(0, w - s + 1, size=k)[:, None]


def _window(vh: np.ndarray, vw: np.ndarray, s: int, c: int) -> tuple:
    """Index arrays picking each image's own s x s square (all c channels): d[_window(...)] is [k, c, s, s]."""
    steps = np.arange(s)
    return (np.arange(len(vh))[:, None, None, None], np.arange(c)[None, :, None, None],
            (vh + steps)[:, None, :, None], (vw + steps)[:, None, None, :])


def _etas(s: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """k eta patterns [k, 1, s, s]: `eta(s)`, transposed at random per image."""
    m = eta(s, rng)
    flip = rng.random(k) > 0.5
    return np.where(flip[:, None, None, None], m.T[None, None], m[None, None])


def _query(target, x_new: np.ndarray, y: np.ndarray, idx: np.ndarray, x_best: np.ndarray, m_best: np.ndarray,
           used: np.ndarray, loss=margins) -> None:
    """One query for the images `idx`: count it, and keep each candidate that lowers its loss (in place)."""
    m = loss(target.logits(x_new), y[idx])
    used[idx] += 1
    better = m < m_best[idx]
    m_best[idx[better]] = m[better]
    x_best[idx[better]] = x_new[better]


@register_attack("square", white_box=False, summary="Square attack: black-box random search, margin loss, 1000 queries",
                 tasks=("classification", "segmentation"))
def square(target, x: np.ndarray, y: np.ndarray, budget: Budget, *, seed: int, steps=None, restarts: int = 1,
           queries: int | None = None, objective=None):
    """Square attack with `restarts` runs of `queries` evaluations each, on the images not yet broken."""
    loss = margins if objective is None else objective.search_loss
    rng = np.random.default_rng(seed)
    n_queries = queries or SQUARE_QUERIES
    run = _linf if budget.norm == "linf" else _l2
    best = x.copy()
    broken = np.zeros(len(x), bool)
    kept = np.full(len(x), np.inf)  # segmentation: each image keeps the restart that left it the lowest loss
    used = np.zeros(len(x), np.int64)
    for _ in range(restarts):
        idx = np.flatnonzero(~broken)
        if not len(idx):
            break
        adv, m, n = run(target, x[idx], y[idx], budget.eps, n_queries, rng, loss)
        hit = m <= 0
        better = np.ones(len(idx), bool) if objective is None else m < kept[idx]
        best[idx[better]] = adv[better]
        kept[idx[better]] = m[better]
        broken[idx[hit]] = True
        used[idx] += n
    return best, broken, used
