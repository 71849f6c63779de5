"""McCann along data-density geodesics (``mccann_metric``): metric flow matching's interpolant, no model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mfsde.data import from_arrays
from mfsde.evaluation import OPTIONAL_BASELINES, baseline_evaluations, compare, mccann, mccann_metric


def ring_snapshots(n=160, seed=0):
    """Three snapshots on a ring of radius 3 (a hole in the middle): cells gather at angle 0, then
    π/2, then π; a quarter of each snapshot stays spread round the whole ring."""
    rng = np.random.default_rng(seed)
    out = []
    for centre in (0.0, math.pi / 2, math.pi):
        k = n // 4
        a = np.concatenate([centre + 0.2 * rng.normal(size=n - k), rng.uniform(0, 2 * math.pi, k)])
        r = 3.0 + 0.1 * rng.normal(size=n)
        out.append(np.stack([r * np.cos(a), r * np.sin(a)], 1).astype(np.float32))
    return from_arrays(out, times=[0.0, 1.0, 2.0])


def test_midpoints_follow_the_ring_where_the_straight_ones_cross_the_hole():
    snaps = ring_snapshots()
    straight = mccann(snaps, 1, [0, 2], n=160, seed=0)
    curved = mccann_metric(snaps, 1, [0, 2], n=160, seed=0, centers=24, eps=0.01)
    assert curved.shape == straight.shape == (160, 2)
    in_hole = lambda x: float((np.linalg.norm(x, axis=1) < 1.5).mean())  # noqa: E731
    assert in_hole(straight) > 0.3  # pairs from angle 0 to π meet in the empty centre
    assert in_hole(curved) < 0.5 * in_hole(straight)
    # and the curved midpoints are the closer law to the cells really there at time 1
    ev = {
        r["preset"]: r["w1"]
        for r in baseline_evaluations(
            snaps, "loo:1", n_particles=160, seed=0, metrics=("w1",), names=("mccann", "mccann_metric")
        )
    }
    assert ev["mccann_metric"] < ev["mccann"]


def test_under_a_flat_metric_it_is_mccann_with_the_same_pairs():
    """ε far above h makes G constant: every geodesic is the straight line, so the cells are McCann's."""
    snaps = ring_snapshots(seed=1)
    flat = mccann_metric(snaps, 1, [0, 2], n=100, seed=3, centers=12, eps=1e9)
    assert np.allclose(flat, mccann(snaps, 1, [0, 2], n=100, seed=3), atol=1e-6)


def test_reproducible_with_a_seed_and_other_seeds_draw_other_cells():
    snaps = ring_snapshots(seed=2)
    a = mccann_metric(snaps, 1, [0, 2], n=50, seed=0, centers=12)
    assert np.array_equal(a, mccann_metric(snaps, 1, [0, 2], n=50, seed=0, centers=12))
    assert not np.array_equal(a, mccann_metric(snaps, 1, [0, 2], n=50, seed=1, centers=12))


def test_on_request_only_and_like_mccann_past_the_last_training_time():
    snaps = ring_snapshots()
    assert "mccann_metric" in OPTIONAL_BASELINES
    assert [r["preset"] for r in baseline_evaluations(snaps, "loo:1", n_particles=20)] == [
        "previous",
        "mccann",
        "floor",
    ]
    (row,) = baseline_evaluations(snaps, "extrapolate:1", n_particles=20, names=("mccann_metric",), metrics=("w1",))
    assert row["per_time"][0]["note"] == "no later training time: McCann falls back to previous"
    with pytest.raises(ValueError, match="mccann_metric: time index 2 has no later training time"):
        mccann_metric(snaps, 2, [0, 1], n=10)
    with pytest.raises(ValueError, match=r"unknown baseline\(s\) \['geodesic'\]; available: .*mccann_metric"):
        baseline_evaluations(snaps, "loo:1", names=("geodesic",))
    with pytest.raises(ValueError, match=r"baselines: unknown name\(s\) \['geodesic'\]; available: .*mccann_metric"):
        compare("ito", snaps, "loo:1", [0], baselines=["geodesic"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"centers": 0}, "centers must be a positive int, got 0"),
        ({"centers": 500}, "centers must be at most the 320 cells the metric is built from, got 500"),
        ({"kappa": -1.0}, "kappa must be a positive number, got -1.0"),
        ({"eps": 0}, "eps must be a positive number, got 0"),
        ({"chunk": 2.5}, "chunk must be a positive int, got 2.5"),
    ],
)
def test_bad_settings_are_one_line_errors_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=f"^mccann_metric: {message}$"):
        mccann_metric(ring_snapshots(), 1, [0, 2], n=10, **kwargs)
