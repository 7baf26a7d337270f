"""Layer phases: contiguous groups of layers that compute alike, found from a similarity matrix.

Seed 001 grouped Gemma 2's layers by eye (0-3, 4-12, 13-19, 20-25, counting the embedding as 0). Here the
grouping is an optimal contiguous segmentation of the layer-by-layer similarity matrix: for each number of
phases k, dynamic programming finds the boundaries that maximize the kernel k-means objective (for each
phase, its summed within-phase similarity divided by its size: contiguous kernel k-means); k is then the one
with the best mean silhouette under the distance ``1 - similarity`` (a one-layer phase scores 0, so a smooth
gradient is not cut into many small phases); below a silhouette of ``min_silhouette`` it is one phase.
Phases are described in layer names (``embed``, block numbers): ``"embed..2 | 3..10 | 11..17"``.

A layer that is degenerate for the items given (its vectors all alike, such as the embedding of prompts that
all end with ``=``: no centred structure, so its CKA with every other layer is 0) carries no information
about phases; it is left out of the segmentation and joins the phase that follows it (the one before it at
the end), so it never decides the split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import LayerscopeError


@dataclass(frozen=True)
class Phases:
    """A segmentation of the rows ``0..L-1`` of a layer-by-layer matrix into contiguous phases.

    Row ``i`` is the layer at depth ``i`` (see :mod:`layerscope.capture.layer_spec`): ``0`` is ``embed``,
    ``i`` is decoder block ``i - 1``.

    Attributes:
        bounds: ``[(first, last), ...]`` inclusive ranges of rows (depths), in order.
        contrast: mean within-phase similarity minus mean cross-phase similarity (0 for one phase).
        silhouette: mean silhouette of the layers under ``1 - similarity`` (0 for one phase).
        consecutive: ``(L-1,)`` similarity of each layer with the next.
    """

    bounds: list[tuple[int, int]]
    contrast: float
    silhouette: float
    consecutive: list[float]

    @property
    def boundaries(self) -> list[int]:
        """The first layer of every phase after the first."""
        return [first for first, _ in self.bounds[1:]]

    def describe(self, labels: list[str] | None = None) -> str:
        """The phases as inclusive ranges of layer names, ``" | "`` between phases: ``"embed..3 | 4..11 | 12..17"``.

        ``embed`` is the embedding output and ``k`` the output of decoder block ``k``, so this example
        reads: the embedding and blocks 0 to 3, then blocks 4 to 11, then blocks 12 to 17. A phase of one
        layer is its name alone. ``labels`` (one per row) replaces the layer names.
        """
        if labels is None:
            from ..capture.layer_spec import layer_name

            labels = [layer_name(i) for i in range(self.bounds[-1][1] + 1)]
        return " | ".join(labels[a] if a == b else f"{labels[a]}..{labels[b]}" for a, b in self.bounds)


def _segment_scores(sim: np.ndarray) -> np.ndarray:
    """``score[i, j]`` = summed similarity within the segment i..j (inclusive) over its size (prefix sums)."""
    n = sim.shape[0]
    prefix = np.zeros((n + 1, n + 1))
    prefix[1:, 1:] = sim.cumsum(0).cumsum(1)
    i = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    total = prefix[j + 1, j + 1] - prefix[i, j + 1] - prefix[j + 1, i] + prefix[i, i]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(j >= i, total / (j - i + 1), -np.inf)


def _best_split(scores: np.ndarray, k: int) -> list[tuple[int, int]]:
    """Optimal contiguous split of ``n`` layers into ``k`` segments maximizing the summed segment scores."""
    n = scores.shape[0]
    best = np.full((k + 1, n + 1), -np.inf)
    back = np.zeros((k + 1, n + 1), dtype=int)
    best[0, 0] = 0.0
    for parts in range(1, k + 1):
        for end in range(parts, n + 1):
            starts = np.arange(parts - 1, end)
            totals = best[parts - 1, starts] + scores[starts, end - 1]
            arg = int(np.argmax(totals))
            best[parts, end], back[parts, end] = totals[arg], starts[arg]
    bounds, end = [], n
    for parts in range(k, 0, -1):
        start = back[parts, end]
        bounds.append((int(start), int(end - 1)))
        end = start
    return bounds[::-1]


def _labels(n: int, bounds: list[tuple[int, int]]) -> np.ndarray:
    label = np.empty(n, dtype=int)
    for index, (a, b) in enumerate(bounds):
        label[a : b + 1] = index
    return label


def _silhouette(sim: np.ndarray, bounds: list[tuple[int, int]]) -> float:
    """Mean silhouette with distance ``1 - sim``; a layer alone in its phase scores 0."""
    if len(bounds) < 2:
        return 0.0
    dist = np.clip(1.0 - sim, 0.0, None)
    label = _labels(sim.shape[0], bounds)
    scores = []
    for i in range(sim.shape[0]):
        own = (label == label[i]) & (np.arange(sim.shape[0]) != i)
        if not own.any():
            scores.append(0.0)
            continue
        a = dist[i, own].mean()
        b = min(dist[i, label == other].mean() for other in range(len(bounds)) if other != label[i])
        scores.append((b - a) / max(a, b) if max(a, b) > 0 else 0.0)
    return float(np.mean(scores))


def _contrast(sim: np.ndarray, bounds: list[tuple[int, int]]) -> float:
    label = _labels(sim.shape[0], bounds)
    same = label[:, None] == label[None, :]
    off_diagonal = ~np.eye(sim.shape[0], dtype=bool)
    within = sim[same & off_diagonal]
    across = sim[~same]
    if across.size == 0 or within.size == 0:
        return 0.0
    return float(within.mean() - across.mean())


def find_phases(
    similarity: np.ndarray,
    n_phases: int | None = None,
    max_phases: int = 8,
    min_silhouette: float = 0.1,
    degenerate: np.ndarray | None = None,
) -> Phases:
    """Segment layers into contiguous phases from a ``(L, L)`` similarity matrix (CKA or mean cosine).

    Args:
        similarity: symmetric, larger = more alike.
        n_phases: the number of phases; None chooses it (1..``max_phases``) by the best mean silhouette.
        degenerate: ``(L,)`` bool, layers left out of the segmentation (see the module docstring); each
            joins the phase after it. See :func:`layerscope.analysis.cka.degenerate_layers`.

    Example:
        >>> find_phases(cka_matrix(residuals)).describe()
        'embed..2 | 3..10 | 11..17'
    """
    sim = np.asarray(similarity, dtype=np.float64)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1] or sim.shape[0] < 1:
        raise LayerscopeError(f"phases need a square (layer, layer) similarity matrix; got shape {sim.shape}")
    n = sim.shape[0]
    if degenerate is not None and np.any(degenerate):
        return _with_degenerate(sim, np.asarray(degenerate, dtype=bool), n_phases, max_phases, min_silhouette)
    if n_phases is not None and not 1 <= n_phases <= n:
        raise LayerscopeError(f"cannot split {n} layers into {n_phases} phases; valid: 1..{n}")
    scores = _segment_scores(sim)
    consecutive = [float(sim[i, i + 1]) for i in range(n - 1)]
    candidates = [n_phases] if n_phases else range(1, min(max_phases, n) + 1)
    found = []
    for k in candidates:
        bounds = _best_split(scores, k)
        found.append(Phases(bounds, _contrast(sim, bounds), _silhouette(sim, bounds), consecutive))
    if n_phases:
        return found[0]
    best = max(found, key=lambda p: p.silhouette)
    return best if best.silhouette >= min_silhouette else found[0]


def _with_degenerate(
    sim: np.ndarray, degenerate: np.ndarray, n_phases: int | None, max_phases: int, min_silhouette: float
) -> Phases:
    """Phases of the informative layers, with each degenerate layer joined to the phase after it."""
    n = sim.shape[0]
    if degenerate.shape != (n,):
        raise LayerscopeError(f"degenerate must have one entry per layer ({n}); got shape {degenerate.shape}")
    kept = np.flatnonzero(~degenerate)
    if kept.size == 0:
        return Phases([(0, n - 1)], 0.0, 0.0, [float(sim[i, i + 1]) for i in range(n - 1)])
    inner = find_phases(sim[np.ix_(kept, kept)], n_phases, max_phases, min_silhouette)
    # phase boundaries in full rows: a phase starts at the first row after the previous phase's last kept row
    bounds, start = [], 0
    for index, (_, b) in enumerate(inner.bounds):
        end = n - 1 if index == len(inner.bounds) - 1 else int(kept[b])
        bounds.append((start, end))
        start = end + 1
    return Phases(bounds, inner.contrast, inner.silhouette, [float(sim[i, i + 1]) for i in range(n - 1)])
