"""The last training gap's displacement carried on (``continuation``): a baseline with dynamics past
the last training time, where McCann has no later time to interpolate to."""

from __future__ import annotations

import numpy as np
import pytest

from mfsde.data import from_arrays
from mfsde.evaluation import OPTIONAL_BASELINES, baseline_evaluations, continuation


def drifting(n=200, seed=0, times=(0.0, 1.0, 3.0), speed=(1.0, 0.0)):
    """Cells drifting at a constant velocity: a cloud at ``speed × t`` at each time."""
    rng = np.random.default_rng(seed)
    return from_arrays(
        [(0.2 * rng.normal(size=(n, 2)) + t * np.asarray(speed)).astype(np.float32) for t in times],
        times=list(times),
    )


def test_constant_velocity_is_carried_on_exactly_to_an_unequal_later_time():
    snaps = drifting()
    x = continuation(snaps, 2, [0, 1], n=200, seed=0)
    assert x.shape == (200, 2)
    # from time 1 on by (3 − 1)/(1 − 0) gaps of displacement (1, 0): the cloud's centre at (3, 0)
    assert np.allclose(x.mean(0), [3.0, 0.0], atol=0.05)
    ev = {
        r["preset"]: r["w1"]
        for r in baseline_evaluations(
            snaps, "extrapolate:1", n_particles=200, seed=0, metrics=("w1",), names=("previous", "continuation")
        )
    }
    assert ev["continuation"] < 0.2 < 1.5 < ev["previous"]  # copying time 1 is 2 units off
    # the cells keep their own shape: each moved by its partner's displacement, not collapsed
    assert 0.1 < float(x.std(0)[1]) < 0.3


def test_a_turn_is_what_it_cannot_see():
    """If cells stop after the last training time, carrying on is worse than copying."""
    rng = np.random.default_rng(1)
    cloud = lambda c: (0.2 * rng.normal(size=(150, 2)) + c).astype(np.float32)  # noqa: E731
    snaps = from_arrays([cloud([0, 0]), cloud([1, 0]), cloud([1, 0])], times=[0.0, 1.0, 2.0])
    ev = {
        r["preset"]: r["w1"]
        for r in baseline_evaluations(
            snaps, "extrapolate:1", n_particles=150, seed=0, metrics=("w1",), names=("previous", "continuation")
        )
    }
    assert ev["previous"] < 0.3 < 0.7 < ev["continuation"]


def test_reproducible_on_request_and_carries_the_growth_factor_on():
    snaps = drifting(seed=2)
    a = continuation(snaps, 2, [0, 1], n=50, seed=0)
    assert np.array_equal(a, continuation(snaps, 2, [0, 1], n=50, seed=0))
    assert not np.array_equal(a, continuation(snaps, 2, [0, 1], n=50, seed=1))
    assert "continuation" in OPTIONAL_BASELINES
    assert {r["preset"] for r in baseline_evaluations(snaps, "extrapolate:1", n_particles=50)} == {
        "previous",
        "mccann",
        "floor",
    }
    # masses 1, 2 at times 0, 1: ×2 per unit of time, so ×4 over the two units to time 3
    (row,) = baseline_evaluations(
        snaps, "extrapolate:1", n_particles=50, names=("continuation",), mass=[1.0, 2.0, 8.0], metrics=("w1",)
    )
    assert row["per_time"][0]["mass"] == pytest.approx(8.0)
    assert row["per_time"][0]["tmv"] == pytest.approx(0.0, abs=1e-12)


def test_it_needs_two_training_times_before_the_held_out_one():
    snaps = drifting()
    with pytest.raises(ValueError, match=r"continuation: time index 1 needs two earlier training time points") as e:
        continuation(snaps, 1, [0, 2], n=10)
    assert "\n" not in str(e.value)
