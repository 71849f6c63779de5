"""The subcommands: ``fit``, ``evaluate``, ``compare``, ``explain`` and ``demo``."""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path

from mfsde._io import write_text_atomic
from mfsde.cli._inputs import (
    CLIError,
    _baselines_for,
    _describe_task,
    _has_heldout,
    _print_eval,
    _run_data_and_task,
    _run_dir,
    _shortcut_overrides,
    build_config,
    data_spec,
    load_data,
    make_task,
)
from mfsde.training._runlock import RunLock
from mfsde.training._runs import RunDir


# -- commands -----------------------------------------------------------------------------------------
def cmd_fit(args) -> int:
    """``mfsde fit``; under torchrun (``WORLD_SIZE`` > 1) it joins the process group first (and
    leaves it at the end; a group initialised by the caller is used and kept) and only rank 0
    prints, writes ``data.json``/``eval.json`` and evaluates."""
    from mfsde.training import _distributed as distributed

    started = not distributed.is_distributed() and distributed.init_from_env()  # a group of its own
    try:
        return _fit(args, main=distributed.is_main())
    finally:
        if started:
            distributed.cleanup()


def _write_lock(out: Path, main: bool):
    """The run directory's write lock on the process that writes it (rank 0), else nothing."""
    return RunLock(out) if main else contextlib.nullcontext()


def _fit(args, main: bool = True) -> int:
    from mfsde.evaluation._evaluate import evaluate
    from mfsde.training._fit import fit

    say = print if main else (lambda *a, **k: None)
    if args.resume:
        run = RunDir(args.resume)
        if not run.has_config:
            raise CLIError(
                f"{args.resume!r} is not a run directory (no config.json; start one with `mfsde fit --out DIR`)"
            )
        for flag in ("preset", "config"):
            if getattr(args, flag, None):
                raise CLIError(
                    f"--{flag} cannot change the run being resumed ({str(run)!r} keeps its own config); "
                    f"drop --{flag}, or start a new run with --out"
                )
        snaps, task = _run_data_and_task(args, run.path)
        cfg = run.read_config()
        overrides = _shortcut_overrides(args)
        if overrides:
            cfg = cfg.override(**overrides)
        out = Path(args.out) if args.out else run.path
        with _write_lock(out, main):  # one writer: before anything is written (fit takes it again)
            if out.resolve() != run.path.resolve() and run.data_spec.is_file() and main:
                RunDir(out).write_data_spec(run.read_data_spec())
            if not run.has_checkpoint:
                say(f"{run.path} has no checkpoint yet (stopped before the first one): starting it from iteration 0")
            res = fit(
                cfg,
                snaps,
                task,
                out_dir=out,
                resume=run.path if run.has_checkpoint else None,
                progress=not args.quiet and main,
            )
    else:
        if not args.data:
            raise CLIError("fit needs --data PATH [PATH ...] (or --resume DIR)")
        spec = data_spec(args)
        snaps = load_data(spec)
        task = make_task(snaps, args.task, args.heldout_populations)
        cfg = build_config(args, snaps.dim)
        out = Path(args.out) if args.out else Path("runs") / f"{cfg.preset or 'custom'}-seed{cfg.train.seed}"
        spec["task"] = task.name
        with _write_lock(out, main):  # one writer: before anything is written (fit takes it again)
            if main:  # everything a resume needs exists before the first iteration
                RunDir(out).write_data_spec(spec)
            say(
                f"fitting {cfg.preset or 'custom config'} on {getattr(snaps, 'name', None) or spec['paths'][0]} "
                f"({_describe_task(snaps, task)}; {cfg.train.iterations} iterations → {out}"
            )
            res = fit(cfg, snaps, task, out_dir=out, progress=not args.quiet and main)
    if not main:
        return 0
    last = res.history[-1] if res.history else {}
    if res.iteration == res.start_iteration and res.iteration > 0:
        print(
            f"nothing to do: {out} has already completed {res.iteration} iterations (ask for more with --iterations N)"
        )
    print(
        f"done in {res.elapsed:.1f} s: final loss {last.get('loss', float('nan')):.4g} "
        f"(fit {last.get('fit', float('nan')):.4g}, energy {last.get('energy', float('nan')):.4g}); run directory {out}"
    )
    if res.stopped == "time_budget":
        print(
            f"stopped by the time budget ({cfg.train.time_budget:g} {cfg.train.time_clock} seconds of training steps) "
            "after "
            f"{res.iteration} of {cfg.train.iterations} iterations"
        )
    if not args.no_eval and _has_heldout(task):
        ev = evaluate(res.model, snaps, task, n_particles=cfg.eval.n_particles, seed=cfg.eval.seed, mass=cfg.data.mass)
        base = _baselines_for(argparse.Namespace(no_baselines=False), snaps, task, ev, cfg.data.mass)
        ev["baselines"] = base
        RunDir(out).write_eval(ev)
        _print_eval(ev, f"held-out evaluation ({ev['n_particles']} simulated cells from t0) with baselines:", base)
    return 0


def cmd_evaluate(args) -> int:
    from mfsde.evaluation._evaluate import evaluate

    run = _run_dir(args.run)
    model, cfg = RunDir(run).load()
    snaps, task = _run_data_and_task(args, run)
    n = cfg.eval.n_particles if args.n_particles == 0 else args.n_particles
    seed = cfg.eval.seed if args.seed is None else args.seed
    ev = evaluate(model, snaps, task, n_particles=n, seed=seed, times=args.at, start=args.start, mass=cfg.data.mass)
    base = _baselines_for(args, snaps, task, ev, cfg.data.mass)
    ev["baselines"] = base
    out = Path(args.out) if args.out else RunDir(run).eval_file()
    out.parent.mkdir(parents=True, exist_ok=True)
    # writing into a run directory: not while another process writes it (a fit still running)
    with RunLock(run) if out.parent.resolve() == Path(run).resolve() else contextlib.nullcontext():
        write_text_atomic(out, json.dumps(ev, indent=2))
    where = f"time indices {args.at}" if args.at else f"held-out times of task {ev.get('task')}"
    cells = "all cells of the start time point" if n is None else f"{n} simulated cells"
    _print_eval(ev, f"{run}: {where}, {cells} (start: {args.start}), seed {seed}", base)
    print(f"wrote {out}")
    return 0


def cmd_compare(args) -> int:
    from mfsde.config._presets import preset
    from mfsde.evaluation._comparison import compare, summarise, to_csv, to_markdown

    spec = data_spec(args)
    snaps = load_data(spec)
    task = make_task(snaps, args.task, args.heldout_populations)
    overrides = _shortcut_overrides(args)
    if "train.seed" in overrides:
        raise CLIError("set seeds with --seeds, not --set train.seed")
    for name in args.presets:  # fail fast, before any training
        preset(name, dim=snaps.dim).override(**overrides)
    safe = "".join(c for c in task.name.replace("|", "-") if c.isalnum() or c in "-_,.=")
    out = Path(args.out) if args.out else Path("runs") / f"compare-{safe}"
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"comparing {', '.join(args.presets)} × seeds {args.seeds} on {getattr(snaps, 'name', '') or 'the data'} "
        f"({_describe_task(snaps, task)} → {out}"
    )
    with RunLock(out):  # one compare per output folder (each run in it is locked by its fit too)
        for name in args.presets:  # each run directory can be resumed / evaluated from its first moment
            for seed in args.seeds:
                RunDir(out / f"{name}-seed{seed}").write_data_spec({**spec, "task": task.name})
        rows = compare(
            args.presets,
            snaps,
            task,
            args.seeds,
            overrides=overrides,
            out_dir=out,
            progress=not args.quiet,
            starts=args.start,
            baselines=not args.no_baselines,
        )
        summary = summarise(rows)
        md = to_markdown(summary)
        to_csv(rows, out / "results.csv")
        to_csv(summary, out / "summary.csv")
        budget = overrides.get("train.time_budget")
        header = (
            f"held-out W1/W2 (mean ± std over seeds {args.seeds}), task {task.name}"
            + (f", time budget {budget:g} {overrides.get('train.time_clock', 'wall')} s per run" if budget else "")
            + "\n\n"
        )
        (out / "summary.md").write_text(header + md)
    print()
    print(header + md)
    print(f"wrote {out / 'results.csv'}, {out / 'summary.csv'}, {out / 'summary.md'}")
    return 0


def cmd_explain(args) -> int:
    from mfsde.explain import explain

    run = _run_dir(args.run)
    model, cfg = RunDir(run).load()
    snaps, task = _run_data_and_task(args, run)
    try:
        history = RunDir(run).read_history()
    except FileNotFoundError:
        history = None
    out = Path(args.out) if args.out else run / "explain"
    if not hasattr(snaps, "n_times"):  # populations: explain one of them
        name = args.population or task.training_names(snaps)[0]
        if name not in snaps:
            raise CLIError(f"--population {name!r} is not a population of the data; populations are {snaps.names}")
        snaps, task = snaps[name], task.resolve(snaps)[name]
        out = out / name if not args.out else out
        print(f"explaining population {name!r}")
    elif args.population:
        raise CLIError("--population needs data with populations (--population-col COL)")
    summary = explain(
        model,
        snaps,
        out,
        time_indices=args.time_index,
        n_cells=args.n_cells,
        n_particles=args.n_particles,
        seed=args.seed,
        history=history,
        heldout=list(task.heldout),
        figures=not args.no_figures,
        clusters=args.clusters,
    )
    print_explain_summary(summary, out)
    return 0


def print_explain_summary(summary: dict, out: Path) -> None:
    print(f"interaction kernel: {summary['kernel']}")
    for note in summary.get("notes", []):
        print(f"note: {note}")
    for a in summary.get("weights") or []:
        line = (
            f"t = {a['time']:g} (index {a['time_index']}): {a['n_cells']} cells, "
            f"cell-wise asymmetry {a['asymmetry']:.3f}"
        )
        if "label_asymmetry" in a:
            line += f", cell-type asymmetry {a['label_asymmetry']:.3f}"
        print(line)
    if summary.get("weights") and "label_names" in summary["weights"][0]:
        a = summary["weights"][-1]
        names = a["label_names"]
        print(f"cell-type matrix at t = {a['time']:g} (rows = receiver type, columns = source type):")
        w = max(8, max(len(n) for n in names) + 1)
        print(" " * w + "".join(f"{n:>{w}}" for n in names))
        for n, row in zip(names, a["label_matrix"]):
            print(f"{n:<{w}}" + "".join(f"{'–' if v is None else format(v, '.3g'):>{w}}" for v in row))
    print(f"wrote {len(summary['files'])} files to {out}")


def cmd_demo(args) -> int:
    from mfsde.cli._demo import run_demo

    run_demo(
        iterations=args.iterations, seed=args.seed, out=args.out, progress=not args.quiet, threads=args.threads or 1
    )
    return 0
