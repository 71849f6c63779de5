"""Preset × seed comparisons at equal compute, with the baselines beside them, and their tables.

:func:`compare` trains and evaluates presets over seeds (:func:`mfsde.fit`,
:func:`mfsde.evaluate`, :mod:`mfsde.evaluation`); :func:`summarise` gives mean ± std
over seeds; :func:`to_markdown` / :func:`to_csv` write tables.

>>> rows = compare(["scimf", "ito"], snaps, "interpolate:2", seeds=[0, 1, 2],
...                overrides={"train.iterations": 500})
>>> print(to_markdown(summarise(rows)))
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from mfsde.config._schema import Config
from mfsde.data._inputs import check_inputs, resolve_task
from mfsde.data._populations import Populations, population_items
from mfsde.evaluation._evaluate import START, evaluate, metric_key
from mfsde.training._runs import RunDir


# -- comparisons -----------------------------------------------------------------------------
def _flatten_eval(ev: dict) -> dict:
    row = {m: ev[m] for m in ("w1", "w2", "tmv") if m in ev}
    for r in ev["per_time"]:
        for m in ("w1", "w2", "tmv"):
            if m in r:
                row[metric_key(m, r)] = r[m]
    notes = [f"{metric_key('', r)[1:]}: {r['note']}" for r in ev["per_time"] if r.get("note")]
    if notes:
        row["note"] = "; ".join(notes)
    return row


def compare(
    presets: Sequence[str] | Mapping[str, Config],
    snapshots,
    task,
    seeds: Iterable[int],
    *,
    overrides: dict | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
    time_budget: float | None = None,
    starts: Sequence[str] = ("t0",),
    baselines: Sequence[str] | bool = True,
) -> list[dict]:
    """Train every preset with every seed on ``task`` and evaluate it on the held-out times,
    with the baselines (:mod:`mfsde.evaluation`) scored on the same cells beside them.

    ``presets``: preset names, or a mapping ``label → Config`` for variants that are not presets
    (e.g. ``{"scimf+zero_init": preset("scimf", 10).override(**{"model.inter.zero_init": True})}``).
    Each config is ``preset(name, dim=snapshots.dim)`` (or the mapped config) with the dotted ``overrides`` (e.g.
    ``{"train.iterations": 200, "model.inter.heads": 5}``) and ``train.seed = seed``; evaluation
    uses ``config.eval.n_particles`` and ``config.eval.seed``. ``time_budget`` (CPU seconds of
    training steps by default, ``train.time_budget`` and ``train.time_clock``) compares methods at
    equal compute: each run stops at the budget or its iteration count, whichever comes first.
    ``starts``: the evaluation protocols (``"t0"``, ``"previous"``, see :func:`evaluate`), a row per
    protocol. ``baselines``: names from :data:`mfsde.evaluation.BASELINES` (``True``: all, ``False``: none) and
    :data:`~mfsde.evaluation.OPTIONAL_BASELINES`, one row per
    baseline, seed and protocol (the seed draws their cells). With ``out_dir`` each run is
    written to ``out_dir/<preset>-seed<seed>/`` (plus its ``eval.json``), and rows are appended
    to ``out_dir/results.jsonl``.

    Returns one row per run and protocol: ``preset``, ``seed``, ``task``, ``start``, ``w1``,
    ``w2``, ``w1@k``/``w2@k`` per held-out index k, ``final_loss``, ``iterations``,
    ``train_seconds``, ``out_dir``; then the baseline rows (``kind = "baseline"``).
    """
    from mfsde.config._presets import preset as get_preset
    from mfsde.evaluation._baselines import BASELINES, OPTIONAL_BASELINES, baseline_evaluations
    from mfsde.training._fit import fit

    if isinstance(presets, str):
        presets = [presets]
    seeds = [int(s) for s in seeds]
    if not presets or not seeds:
        raise ValueError("compare needs at least one preset and one seed")
    starts = [starts] if isinstance(starts, str) else list(starts)
    bad = [s for s in starts if s not in START]
    if bad or not starts:
        raise ValueError(f"starts: unknown protocol(s) {bad or starts}; available: {', '.join(START)}")
    baselines = list(BASELINES) if baselines is True else ([] if baselines is False else list(baselines))
    unknown = [b for b in baselines if b not in BASELINES + OPTIONAL_BASELINES]
    if unknown:
        raise ValueError(
            f"baselines: unknown name(s) {unknown}; available: {', '.join(BASELINES + OPTIONAL_BASELINES)}"
        )
    if isinstance(snapshots, Populations):
        task, items = population_items(snapshots, task)
        if not items:
            raise ValueError(f"task {task.name!r} holds out no population and no time point to evaluate")
    else:
        task = resolve_task(task, snapshots)
        check_inputs(snapshots, task)
        if not list(task.heldout):
            raise ValueError(f"task {task.name!r} has no held-out time to evaluate")
    out_dir = Path(out_dir) if out_dir is not None else None
    overrides = dict(overrides or {})
    if "train.seed" in overrides:
        raise ValueError("set seeds with the `seeds` argument, not overrides['train.seed']")
    if time_budget is not None:
        overrides["train.time_budget"] = time_budget
    if isinstance(presets, Mapping):
        bad = [k for k, v in presets.items() if not isinstance(v, Config)]
        if bad:
            raise TypeError(f"presets: a mapping must give an mfsde.Config per label, not for {bad}")
        configs = {label: cfg.override(**overrides) for label, cfg in presets.items()}
    else:
        configs = {p: get_preset(p, dim=snapshots.dim).override(**overrides) for p in presets}  # fail fast
    given = {json.dumps(c.data.mass) for c in configs.values() if c.data.mass != "normalised"}
    if len(given) > 1:
        raise ValueError(
            f"the configs give different data.mass ({', '.join(sorted(given))}); compare one meaning of size"
        )
    # where a config gives masses every model (a mass-conserving one keeps its start's) and baseline is scored on them
    mass = json.loads(given.pop()) if given else "normalised"
    rows = []

    def record(row: dict, run_dir: Path | None = None, ev: dict | None = None) -> None:
        rows.append(row)
        if out_dir is not None:
            if run_dir is not None and ev is not None:
                RunDir(run_dir).write_eval(ev, row["start"])
            out_dir.mkdir(parents=True, exist_ok=True)
            with open(out_dir / "results.jsonl", "a") as fh:
                fh.write(json.dumps(row) + "\n")

    for name in configs:
        for seed in seeds:
            cfg = configs[name].override(**{"train.seed": seed})
            run_dir = out_dir / f"{name}-seed{seed}" if out_dir is not None else None
            res = fit(cfg, snapshots, task, out_dir=run_dir, progress=progress)
            for start in starts:
                ev = evaluate(
                    res.model,
                    snapshots,
                    task,
                    n_particles=cfg.eval.n_particles,
                    seed=cfg.eval.seed,
                    start=start,
                    mass=mass,
                )
                record(
                    {
                        "preset": name,
                        "kind": "model",
                        "seed": seed,
                        "task": task.name,
                        "start": start,
                        **_flatten_eval(ev),
                        "final_loss": res.history[-1]["loss"] if res.history else float("nan"),
                        "iterations": res.iteration,
                        "train_seconds": res.train_seconds,
                        "train_cpu_seconds": res.train_cpu_seconds,
                        "train_wall_seconds": res.train_wall_seconds,
                        "time_clock": cfg.train.time_clock,
                        "out_dir": str(run_dir) if run_dir is not None else None,
                    },
                    run_dir,
                    ev,
                )
    n_eval = next(iter(configs.values())).eval.n_particles
    for seed in seeds if baselines else []:
        evs = baseline_evaluations(snapshots, task, n_particles=n_eval, seed=seed, names=baselines, mass=mass)
        for start in starts:  # the baselines do not depend on the protocol: one row per start, computed once
            for ev in evs:
                record(
                    {
                        "preset": ev["preset"],
                        "kind": "baseline",
                        "seed": seed,
                        "task": task.name,
                        "start": start,
                        **_flatten_eval(ev),
                    }
                )
    return rows


_GROUP_KEYS = ("task", "start", "preset")
_NOT_METRICS = {"seed"}


def summarise(rows: Sequence[dict], metrics: Sequence[str] | None = None) -> list[dict]:
    """Mean ± std over seeds per (task, start protocol, preset), in order of first appearance.

    ``metrics`` defaults to every numeric column except ``seed``. The std is the sample
    standard deviation (ddof = 1; NaN for a single seed). Output rows: ``task``, ``start``,
    ``preset``, ``n_seeds``, ``seeds`` and ``<metric>_mean``, ``<metric>_std`` per metric.
    """
    if not rows:
        return []
    if metrics is None:
        metrics = []
        for r in rows:
            for k, v in r.items():
                if (
                    k not in _GROUP_KEYS
                    and k not in _NOT_METRICS
                    and k not in metrics
                    and isinstance(v, (int, float, np.number))
                    and not isinstance(v, bool)
                ):
                    metrics.append(k)
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in _GROUP_KEYS), []).append(r)
    out = []
    for key, rs in groups.items():
        s = dict(zip(_GROUP_KEYS, key))
        s["n_seeds"] = len(rs)
        s["seeds"] = [r.get("seed") for r in rs]
        for m in metrics:
            vals = np.array([r[m] for r in rs if r.get(m) is not None], dtype=np.float64)
            s[f"{m}_mean"] = float(vals.mean()) if vals.size else float("nan")
            s[f"{m}_std"] = float(vals.std(ddof=1)) if vals.size > 1 else float("nan")
        out.append(s)
    return out


def _fmt(v, digits: int) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, (float, np.floating)):
        return f"{v:.{digits}f}"
    return str(v)


def _digits(values: Sequence[float], least: int = 2, most: int = 6) -> int:
    """The fewest decimals (``least``..``most``) at which different ``values`` print differently."""
    vals = sorted({float(v) for v in values if v is not None and not math.isnan(float(v))})
    for d in range(least, most + 1):
        if len({f"{v:.{d}f}" for v in vals}) == len(vals):
            return d
    return most


def to_markdown(summary: Sequence[dict], metrics: Sequence[str] = ("w1", "w2"), digits: int | None = None) -> str:
    """A Markdown table: one row per (task, preset), a ``mean ± std`` cell per metric, then the
    training iterations and seconds (``train_seconds``: on the budget's clock) where the rows have them.

    Works on :func:`summarise` output (``<m>_mean``/``<m>_std``) and on raw rows (``<m>``).
    ``digits=None``: per metric, the fewest decimals (at least 2) at which rows with different
    values print differently."""
    if not summary:
        return ""
    raw = not any(f"{m}_mean" in r for r in summary for m in metrics)
    lead = [k for k in _GROUP_KEYS if any(r.get(k) is not None for r in summary)] + (["seed"] if raw else ["n_seeds"])
    extra = [
        k for k in ("iterations", "train_seconds") if any(r.get(k if raw else f"{k}_mean") is not None for r in summary)
    ]
    header = (
        lead
        + [m.upper() for m in metrics]
        + [{"iterations": "iterations", "train_seconds": "train s"}[k] for k in extra]
    )
    value = (lambda r, m: r.get(m)) if raw else (lambda r, m: r.get(f"{m}_mean"))
    places = {m: digits if digits is not None else _digits([value(r, m) for r in summary]) for m in metrics}
    places.update({"iterations": 0, "train_seconds": 0 if digits is None else digits})
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in summary:
        cells = [_fmt(r.get(k), 2) for k in lead]
        for m in list(metrics) + extra:
            if raw:
                cells.append(_fmt(r.get(m), places[m]))
            else:
                mean, std = r.get(f"{m}_mean"), r.get(f"{m}_std")
                cell = _fmt(mean, places[m])
                if std is not None and not (isinstance(std, float) and math.isnan(std)):
                    cell += f" ± {_fmt(std, places[m])}"
                cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[dict], path: str | Path | None = None) -> str:
    """CSV text of ``rows`` (columns in order of first appearance; lists joined by ``;``);
    also written to ``path`` when given."""
    columns: list[str] = []
    for r in rows:
        for k in r:
            if k not in columns:
                columns.append(k)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ";".join(map(str, v)) if isinstance(v, (list, tuple)) else v for k, v in r.items()})
    text = buf.getvalue()
    if path is not None:
        Path(path).write_text(text)
    return text
