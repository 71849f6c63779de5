"""The report of ``benchmarks/populations.py``: one table from the rows of a run (or of several,
``--from``), its JSON and figures, and the block of docs/populations.md that ``--readme`` rewrites.
"""

from __future__ import annotations

import functools
import math
import shlex

import _common
import numpy as np
from _populations_systems import HELDOUT, N_CELLS, N_POPULATIONS

#: mean ± std over seeds of a table cell; undefined values (NaN, ``None``: e.g. the interaction error
#: on a control) are left out
_ms = functools.partial(_common.mean_pm, drop_undefined=True)


def combine(sources: list[str]) -> list[dict]:
    """The rows of several named runs (``NAME``, ``NAME:PRESET``, either with ``=LABEL``) as one log:
    each seed's baselines once (they depend on the data set only); ``:PRESET`` keeps only that
    preset's model rows of the run, ``=LABEL`` renames its presets to ``LABEL``."""
    rows, seen = [], set()
    for src in sources:
        name, _, label = src.partition("=")
        name, _, only = name.partition(":")
        stored, log = _common.load_rows(name)  # its row log, or the rows in its JSON
        if not stored:
            raise FileNotFoundError(f"no rows of a run named {name!r} ({log})")
        found = False
        for r in stored:
            if r["kind"] == "baseline":
                key = (r["family"], r["control"], r["seed"], r["preset"])
                if key in seen:
                    continue
                seen.add(key)
            elif only and r["preset"] != only:
                continue
            else:
                found = True
                if label:
                    r = {**r, "preset": label, "source": name}
            rows.append(r)
        if only and not found:
            raise FileNotFoundError(f"the run named {name!r} has no rows of preset {only!r}")
    return rows


def _options(preset: str, options: dict) -> str:
    """``"rbf: bandwidth=1.0, name=rbf"``: a preset and its settings, for the table's header."""
    return f"{preset}: " + ", ".join(f"{k}={v}" for k, v in sorted(options.items()))


def _spread(vals) -> tuple[float, float]:
    """Mean and sample std over seeds (0 for one seed): the verdicts' tolerance."""
    m, s = _common.mean_std(vals)
    return m, (0.0 if math.isnan(s) else s)


def _direction_table(fam: str, dirs: list[dict]) -> list[str]:
    """Markdown lines: who drives whom on a two-species family, per preset and seed."""
    lines = [
        f"### {fam}: who drives whom (held-out population, last time; truth: A←B > 0, B←A = 0)",
        "",
        "Jacobian: mean ‖∂f_inter(x_i)/∂x_j‖ over receivers i of one species and sources j of the other "
        "(`mfsde.explain.label_influence`, data units); shown when A←B is more than twice B←A and the gap "
        "exceeds 2 standard errors (the truth: B←A = 0). Perturbation: relative change of one species' drift "
        "when the other's cells are displaced. "
        "Weights: the kernel's cell-type aggregated weights, shown when A←B is more than twice B←A.",
        "",
        "| method | seed | Jacobian A←B | Jacobian B←A | shown (Jacobian) | perturbation A←B | "
        "perturbation B←A | weights A←B | weights B←A | shown (weights) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    truth = dirs[0]["direction"]
    jt = truth.get("jacobian_truth")
    jcells = f"{jt['A<-B']:.4f} | {jt['B<-A']:.4f} | yes" if jt else "| |"
    lines.append(f"| *truth* | – | {jcells} | {truth['truth']['A<-B']:.3f} | {truth['truth']['B<-A']:.3f} | | | |")
    for r in sorted(dirs, key=lambda r: (r["preset"], r["seed"])):
        d = r["direction"]
        w, j = d.get("weights"), d.get("jacobian_model")
        shown = "–" if w is None else ("yes" if w["A<-B"] > 2 * w["B<-A"] else "no")  # as the Jacobian
        wcells = "| – | – |" if w is None else f"| {w['A<-B']:.4f} | {w['B<-A']:.4f} |"
        if j is None:
            jcells = "– | – | –"
        else:
            gap = j["A<-B"] - j["B<-A"]
            ok = gap > 2 * float(np.hypot(j["sem_A<-B"], j["sem_B<-A"])) and j["A<-B"] > 2 * j["B<-A"]
            jcells = f"{j['A<-B']:.4f} | {j['B<-A']:.4f} | {'yes' if ok else 'no'}"
        lines.append(
            f"| {r['preset']} | {r['seed']} | {jcells} | {d['model']['A<-B']:.3f} | "
            f"{d['model']['B<-A']:.3f} {wcells} {shown} |"
        )
    lines.append("")
    return lines


def render(rows: list[dict], settings: dict, name: str) -> str:
    """The table of ``rows`` (markdown, returned), written with the JSON and the figures as
    ``results/<name>.*``."""
    budget = next((r["budget"] for r in rows if r["kind"] == "model"), float("nan"))
    lines = [
        f"Held-out populations ({len(HELDOUT)} of {N_POPULATIONS}, each predicted from its own first snapshot; "
        f"{N_CELLS} cells per time), {budget:g} s of training steps per run (1 thread, 128 particles per "
        "population), mean ± std over seeds. W1: mean over held-out populations and times ≥ 1. drift: "
        "E‖f̂−f‖²/E‖f‖² on the held-out populations' own cells. inter: E‖Δf̂−Δf‖²/E‖Δf‖², Δf = the change of the "
        "drift at the same probes between two times of one held-out population (the presets' f_intra has no "
        "time input, so it cancels: gauge-free, L², on the population's support; 0 = truth, 1 = no interaction; "
        "controls: inter_scaled, the spurious interaction in units of the drift). pairwise ∂f: "
        "Σ‖Ĵ_ij−J_ij‖²/Σ‖J_ij‖², J_ij = ∂f(x_i, ρ)/∂x_j (j ≠ i) on fresh populations of the true system "
        "(`mfsde.evaluation.pair_jacobian_error`; gauge-free for any model but a derivative (H¹-type) criterion, "
        "dominated by close pairs), with its cosine. cross-pop: Δf between the two held-out populations at "
        "shared times (time effects cancel, but probes of one population sit outside the other), with the "
        "cosine. Verdict: an interaction preset *beats* ito when its mean W1 is "
        "lower by more than the larger of the two seed spreads (controls: *within* = not different by more "
        "than that).",
        "",
    ]
    all_models = [r for r in rows if r["kind"] == "model"]
    sigma_modes = sorted({r.get("sigma_mode", "preset") for r in all_models})
    steps = sorted({f"{r['preset']} {r.get('inter_lr')}" for r in all_models if r.get("inter_lr") is not None})
    lines[0] += (
        f" Noise: {', '.join(sigma_modes)}. Step size of the interaction kernel (train.inter_lr): "
        f"{'; '.join(steps) if steps else 'train.lr for every preset'}."
    )
    kernels = sorted(
        {
            _options(r["preset"], r["inter_options"])
            for r in all_models
            if r.get("inter_options", {}).get("name", "none") != "none"
        }
    )
    if kernels:
        lines[0] += f" Kernels: {'; '.join(kernels)}."
    if any("order" in r for r in rows):
        lines[0] += (
            " Order parameter error (Kuramoto): |r̂ − r| for r = |mean of the cells on the circle|, the "
            "model simulated from each held-out population's first snapshot (its points projected onto "
            "the circle), mean over held-out populations and times ≥ 1; blind to the mean phase, which W1 "
            "sees and which with 300 oscillators wanders between independent realisations."
        )
    groups = sorted({f"{r['preset']} {r['random_batch']}" for r in all_models if r.get("random_batch")})
    if groups:
        lines[0] += (
            f" Trained in random groups of (train.random_batch; evaluation uses every pair): {'; '.join(groups)}."
        )
    extra = sorted({_options(r["preset"], r["overrides"]) for r in all_models if r.get("overrides")})
    if extra:
        lines[0] += f" Overrides (--inter-lr, --inter-set): {'; '.join(extra)}."
    if settings.get("sources"):  # a combined table: say where its rows come from (rerunnable)
        lines[0] += " Rows from: --from " + " ".join(shlex.quote(s) for s in settings["sources"]) + "."
    verdicts = []
    for fam in dict.fromkeys(r["family"] for r in rows):
        for control in (False, True):
            rs = [r for r in rows if r["family"] == fam and r["control"] == control]
            if not rs:
                continue
            title = f"{fam}{' control (no interaction)' if control else ''}"
            order = any("order" in r for r in rs)  # Kuramoto: the order parameter's error |r̂ − r|
            lines += [
                f"### {title}",
                "",
                "| method | held-out W1 | drift error | "
                f"{'inter_scaled' if control else 'inter error'} | pairwise ∂f error (cosine) | "
                "cross-pop inter (cosine) | iterations | seeds "
                f"| vs ito |{' order parameter error |' if order else ''}",
                "|---|---|---|---|---|---|---|---|---|" + ("---|" if order else ""),
            ]
            models = [r for r in rs if r["kind"] == "model"]
            ito = [r["w1"] for r in models if r["preset"] == "ito"]
            for p in dict.fromkeys(r["preset"] for r in models):
                pr = [r for r in models if r["preset"] == p]
                verdict = ""
                if p != "ito" and ito:
                    (m0, s0), (m1, s1) = _spread(ito), _spread([r["w1"] for r in pr])
                    tol = max(s0, s1)
                    if control:
                        verdict = "within" if abs(m1 - m0) <= tol else ("better" if m1 < m0 else "worse")
                    else:
                        verdict = "beats" if m0 - m1 > tol else ("worse" if m1 - m0 > tol else "tie")
                    verdicts.append((title, p, verdict))
                key = "inter_scaled" if control else "inter"
                cross = (
                    f"{_ms([r.get('inter_cross') for r in pr])} ({_ms([r.get('cosine_cross') for r in pr], 2)})"
                    if any("inter_cross" in r for r in pr)
                    else "–"
                )
                jac = (
                    f"{_ms([r.get('inter_jac') for r in pr])} ({_ms([r.get('cosine_jac') for r in pr], 2)})"
                    if not control and any("inter_jac" in r for r in pr)
                    else "–"
                )
                lines.append(
                    f"| {p} | {_ms([r['w1'] for r in pr])} | {_ms([r['drift'] for r in pr])} | "
                    f"{_ms([r[key] for r in pr])} | {jac} | {cross} | {_ms([r['iterations'] for r in pr], 0)} | "
                    f"{len(pr)} | {verdict} |" + (f" {_ms([r.get('order') for r in pr])} |" if order else "")
                )
            for b in ("truth", "mccann", "previous", "floor"):
                br = [r for r in rs if r["kind"] == "baseline" and r["preset"] == b]
                if br:
                    lines.append(
                        f"| *{b}* | {_ms([r['w1'] for r in br])} | | | | | | {len(br)} | |"
                        + (f" {_ms([r.get('order') for r in br])} |" if order else "")
                    )
            lines.append("")
    for fam in dict.fromkeys(r["family"] for r in rows if r.get("direction")):
        lines += _direction_table(fam, [r for r in rows if r.get("direction") and r["family"] == fam])
    if verdicts:
        lines += ["### verdicts against ito", "", "| system | preset | verdict |", "|---|---|---|"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in verdicts]
        lines.append("")
    md = "\n".join(lines) + "\n"
    (_common.RESULTS_DIR / f"{name}.md").write_text(md)
    _common.write_json(name, {"settings": settings, "environment": _common.env_info(), "rows": rows})
    figure(rows, name)
    return md


def figure(rows: list[dict], name: str) -> None:
    """``<name>.png`` (true vs learned Δf on OU), ``<name>_profile.png`` (Morse force profiles) and
    ``<name>_order.png`` (Kuramoto order parameter), each where the rows have its material."""
    samples = [r for r in rows if r.get("delta_sample")]
    profiles = [r for r in rows if r.get("profile")]
    if profiles:
        profile_figure(profiles, name)
    if any(r.get("order_curves") for r in rows):
        order_figure([r for r in rows if r.get("order_curves")], name)
    if not samples:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(samples), figsize=(3.6 * len(samples), 3.4), squeeze=False)
    for ax, r in zip(axes[0], sorted(samples, key=lambda r: r["preset"])):
        t, m = np.asarray(r["delta_sample"]["true"]), np.asarray(r["delta_sample"]["model"])
        lim = float(np.abs(t).max()) * 1.2
        for c, col in zip(range(t.shape[1]), ("tab:blue", "tab:orange")):
            ax.scatter(t[:, c], m[:, c], s=6, alpha=0.6, color=col, label=f"component {c + 1}")
        ax.plot([-lim, lim], [-lim, lim], color="k", lw=0.8)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_title(f"{r['preset']}: inter error {r['inter']:.2f}", fontsize=10)
        ax.set_xlabel("true Δf (population-dependent drift)")
        ax.set_ylabel("learned Δf")
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("mean-field OU, held-out population: true vs learned interaction (seed 0)", fontsize=10)
    fig.tight_layout()
    fig.savefig(_common.RESULTS_DIR / f"{name}.png", dpi=110)
    plt.close(fig)


def order_figure(rows: list[dict], name: str) -> None:
    """Kuramoto: the order parameter r(t) of each held-out population, observed, the truth and every
    preset (the first seed; interacting system only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if not r["control"]]  # the controls are other data (no synchronisation)
    if not rows:
        return
    seed0 = min(r["seed"] for r in rows)
    rows = [r for r in rows if r["seed"] == seed0]
    pops = list(dict.fromkeys(n for r in rows for n in r["order_curves"]))
    fig, axes = plt.subplots(1, len(pops), figsize=(4.2 * len(pops), 3.4), squeeze=False)
    for ax, pop in zip(axes[0], pops):
        c = next(r["order_curves"][pop] for r in rows if pop in r["order_curves"])
        ax.plot(c["times"], c["observed"], "ko-", lw=2, label="observed")
        for r in rows:
            if pop in r["order_curves"]:
                truth = r["kind"] == "baseline"
                ax.plot(
                    c["times"],
                    r["order_curves"][pop]["model"],
                    lw=1.2,
                    ls=":" if truth else "-",
                    label="truth (simulated)" if truth else r["preset"],
                )
        ax.set_ylim(0, 1)
        ax.set_xlabel("time")
        ax.set_ylabel("order parameter r")
        ax.set_title(pop, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(
        f"Kuramoto, held-out populations: synchronisation from each one's first snapshot (seed {seed0})", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(_common.RESULTS_DIR / f"{name}_order.png", dpi=110)
    plt.close(fig)


def profile_figure(rows: list[dict], name: str) -> None:
    """Learned force profiles ψ(r) of the radial kernel on Morse, every seed, against W'(r)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    first = rows[0]["profile"]
    r = np.asarray(first["r"])
    ax.plot(r, first["true"], color="k", lw=2, label="truth W'(r)")
    for row in sorted(rows, key=lambda x: x["seed"]):
        ax.plot(
            r,
            row["profile"]["learned"],
            lw=1,
            alpha=0.8,
            label=f"{row['preset']}, step {row.get('inter_lr') or row.get('lr')}, seed {row['seed']} "
            f"(inter {row['inter']:.2f})",
        )
    counts = np.asarray(first["counts"], dtype=float)
    lo, hi = ax.get_ylim()
    ax.fill_between(
        r, lo, lo + 0.25 * (hi - lo) * counts / counts.max(), color="0.85", zorder=0, label="pair distances in the data"
    )
    ax.set_ylim(lo, hi)
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xlabel("distance r (data units)")
    ax.set_ylabel("force ψ(r) (> 0 attracts)")
    ax.set_title("Morse swarms: learned force profile of the radial kernel", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(_common.RESULTS_DIR / f"{name}_profile.png", dpi=110)
    plt.close(fig)


def write_readme(md: str, name: str) -> None:
    """Put the table ``md`` between the ``<!-- POPULATIONS -->`` markers of docs/populations.md."""
    readme = _common.REPO_ROOT / "docs" / "populations.md"
    text = readme.read_text()
    a, b = text.index("<!-- POPULATIONS -->"), text.index("<!-- /POPULATIONS -->")
    body = (
        f"Measured by `python benchmarks/populations.py` (2 shards on 2 cores; "
        f"`results/{name}.md`, `.json`, `.png`):\n\n" + md.replace("### ", "#### ")
    )
    readme.write_text(text[:a] + "<!-- POPULATIONS -->\n" + body + text[b:])
