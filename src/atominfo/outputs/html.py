"""The dataset report as one self-contained HTML page.

`write_report_html` writes a `DatasetReport` (`atominfo.workflows.report`)
as a single file that makes no request to anything outside it: the style is
inline CSS, every figure an embedded base64 PNG, and there is no script. It
opens offline, can be mailed or attached to a lab notebook, and answers, in
order: how much information the dataset holds, whether it is complete, where
it is redundant, what is new against the reference, and how to reproduce
every number (commands, package versions, input fingerprints).

The two figures specific to the report, `plot_information` and
`plot_dh_histograms`, follow `atominfo.outputs.plots`: they take and return
matplotlib Axes, legends sit outside the data, and group i has colour i of
``palette(n_groups + 1)`` in every figure (the whole dataset, "all", the last).
"""

from __future__ import annotations

import base64
import html
import io
import math
import shlex
from pathlib import Path

import numpy as np

from atominfo.errors import InputError
from atominfo.outputs.atomic import atomic_output
from atominfo.outputs.plots import (
    ROLE_COLOURS,
    _new_figure,
    palette,
    plot_compression,
    plot_learning_curves,
    plot_overlap_matrix,
)

DPI = 110
TOP = 10  # rows of the "most novel" tables

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 margin:0;background:#f6f7f9;color:#1d2330;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:24px 32px 48px;background:#fff}
h1{font-size:1.7em;margin:.2em 0 .1em}h2{font-size:1.3em;margin-top:1.8em;
 border-bottom:2px solid #e3e6eb;padding-bottom:.2em}h3{font-size:1.05em;margin-top:1.2em}
.sub{color:#566;margin:0 0 1em}
.answers{background:#eef4fb;border-left:4px solid #1f77b4;padding:10px 18px;margin:1em 0}
.answers li{margin:.25em 0}
.warn{display:block;background:#fff6e5;border-left:4px solid #e69500;padding:8px 14px;
 margin:.4em 0}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{border-bottom:1px solid #e3e6eb;padding:4px 10px;text-align:right;white-space:nowrap}
.scroll{overflow-x:auto}
th{background:#f0f2f5}td.l,th.l{text-align:left}
figure{margin:1em 0;text-align:center}figure img{max-width:100%;height:auto}
figcaption{font-size:.88em;color:#455;max-width:900px;margin:.3em auto 0;text-align:left}
pre{background:#f0f2f5;padding:10px 12px;overflow-x:auto;font-size:.85em}
code{font-size:.92em}.swatch{display:inline-block;width:.9em;height:.9em;
 border-radius:2px;vertical-align:-.1em;margin-right:.35em}
footer{color:#778;font-size:.85em;margin-top:2em}
"""


# --- figures -----------------------------------------------------------------------------


def group_colours(report) -> dict:
    """{group name: colour}: group i has colour i of palette(n_groups + 1), "all" the last."""
    names = [g.name for g in report.information]
    return dict(zip(names, palette(len(names))))


def plot_information(report, *, ax=None, title: str | None = None):
    """Entropy H of each group against its maximum log n, as horizontal bars.

    The pale bar is log n (every environment distinct), the solid bar H; the
    label gives H / log n. Returns the Axes.
    """
    info = report.information
    if ax is None:
        ax = _new_figure(figsize=(7.5, 1.2 + 0.45 * len(info)))[1]
    colours = group_colours(report)
    y = np.arange(len(info))[::-1]
    for yi, g in zip(y, info):
        c = colours[g.name]
        ax.barh(yi, g.log_n, color=c, alpha=0.25, height=0.7)
        ax.barh(yi, g.entropy, color=c, height=0.7)
        eff = "" if not math.isfinite(g.efficiency) else f"  {g.efficiency:.0%} of log n"
        ax.text(g.log_n, yi, f" H = {g.entropy:.2f}{eff}", va="center", fontsize=8)
    ax.set_yticks(y, [f"{g.name} ({g.structures} str.)" for g in info])
    ax.set_xlim(0, max(g.log_n for g in info) * 1.45)
    ax.set_xlabel("nats (solid: entropy H; pale: its maximum log n)")
    ax.grid(alpha=0.3, axis="x")
    ax.set_title(
        title
        or f"Information per group: entropy H against its maximum log n "
        f"(h = {report.bandwidth:g} 1/Å)",
        fontsize=10,
    )
    return ax


def plot_dh_histograms(report, *, ax=None, title: str | None = None, bins: int = 60):
    """Distribution of per-atom dH against the reference, one step histogram per group.

    Heights are fractions of each group's environments (groups of different
    sizes compare); the dashed line is dH = 0 (right of it: novel). The x axis
    is symmetric-logarithmic (linear for |dH| < 1 nat), so that the bulk near
    0 and a tail of far outliers are both visible. Returns the Axes.
    """
    if report.dH is None:
        raise InputError("no reference: the report holds no dH")
    if ax is None:
        ax = _new_figure(figsize=(7.5, 3.8))[1]
    colours = group_colours(report)
    names = [g for g in report.groups] if len(report.groups) > 1 else ["all"]
    # bins even in sign(x) log(1 + |x|): the bulk near dH = 0 and a tail of hundreds of
    # nats both stay readable (the axis is symlog, linear within |dH| < 1 nat)
    lo, hi = float(report.dH.min()), float(report.dH.max())
    u = np.linspace(
        np.sign(lo) * np.log1p(abs(lo)), np.sign(hi) * np.log1p(abs(hi)) + 1e-9, bins + 1
    )
    edges = np.sign(u) * np.expm1(np.abs(u))
    for name in names:
        frames = report.groups[name] if name in report.groups else np.arange(len(report.data))
        values = report.dH[report.data.rows(frames)]
        weights = np.full(len(values), 1.0 / len(values))
        ax.hist(
            values,
            bins=edges,
            weights=weights,
            histtype="step",
            lw=1.6,
            color=colours[name],
            label=f"{name}: {100 * np.mean(values > 0):.1f}% novel",
        )
    ax.axvline(0.0, color=ROLE_COLOURS["reference"], ls="--", lw=0.9)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("dH against the reference (nats, symmetric log scale; > 0: novel)")
    ax.set_ylabel("fraction of the group's environments")
    ax.grid(alpha=0.3)
    ax.set_title(
        title
        or f"Per-atom dH of each group against the reference "
        f"({report.reference_environments} environments, "
        f"h = {report.bandwidth:g} 1/Å)",
        fontsize=10,
    )
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        frameon=False,
        fontsize=8,
        title="group",
        title_fontsize=8,
        alignment="left",
    )
    return ax


def _png(axes) -> str:
    """The figure holding `axes` as a data: URI (base64 PNG)."""
    first = axes[0] if isinstance(axes, (tuple, list)) else axes
    buffer = io.BytesIO()
    first.figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# --- text --------------------------------------------------------------------------------

e = html.escape


def _num(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}g}"


def _pct(x) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{100 * x:.1f}%"


def _table(headers, rows, left: int = 1) -> str:
    head = "".join(
        f"<th class='l'>{e(h)}</th>" if i < left else f"<th>{e(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class='l'>{c}</td>" if i < left else f"<td>{c}</td>" for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return (
        f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}"
        "</tbody></table></div>"
    )


def _figure(uri: str, caption: str, alt: str) -> str:
    return f"<figure><img src='{uri}' alt='{e(alt)}'><figcaption>{caption}</figcaption></figure>"


def _swatch(colour) -> str:
    from matplotlib.colors import to_hex

    return f"<span class='swatch' style='background:{to_hex(colour)}'></span>"


def _gap_sentence(curve) -> str:
    """The information gap in words, or why it is not determined (HTML)."""
    if curve.determined:
        gap, gi = curve.gap(), curve.gap_interval()
        level = f"{curve.fit.level:.0%}"
        interval = f" ({level} interval {gi[0]:.3f} to {gi[1]:.3f})" if gi else ""
        text = (
            f"asymptote {curve.asymptote:.3f} nats; information gap at the full size "
            f"{gap:.3f} nats{interval}."
        )
        if gi is not None and gi[1] < 0:
            text += (
                " <span class='warn'>the full set's H lies above the whole interval of "
                "the asymptote: the fit does not describe the largest sizes, read this "
                "gap as not determined</span>"
            )
        return text
    return f"the information gap is <b>not determined</b>: {e(curve.fit_reason)}."


def _curve_row(name, curve, colour) -> list:
    ai, gi = curve.asymptote_interval, curve.gap_interval()
    return [
        f"{_swatch(colour)}{e(name)}",
        curve.total,
        _num(curve.entropy_at(curve.total)),
        e(curve.fit_status),
        "–"
        if curve.asymptote is None
        else _num(curve.asymptote) + (f" ({_num(ai[0])} to {_num(ai[1])})" if ai else ""),
        "–"
        if curve.gap() is None
        else _num(curve.gap(), 3)
        + (f" ({_num(gi[0], 3)} to {_num(gi[1], 3)})" if gi else "")
        + (" ⚠ see below" if gi is not None and gi[1] < 0 else ""),
    ]


def _commands(report) -> list[tuple[str, str]]:
    """(what it reproduces, command line) pairs from the provenance the CLI recorded."""
    p = report.provenance
    files = p.get("files")
    if not files:
        return []
    q = shlex.quote
    inputs = " ".join(q(str(f)) for f in files)
    common = f" -b {report.bandwidth:g} -k {p.get('k', 32)} -c {p.get('cutoff', 5.0):g}"
    for key, flag in (
        ("index", "--index"),
        ("format", "--format"),
        ("rescale_volume", "--rescale-volume"),
    ):
        if p.get(key) not in (None, ":"):
            common += f" {flag} {q(str(p[key]))}"
    group = f" --group-by {q(report.group_key)}" if report.group_key else ""
    out = []
    if p.get("command"):
        out.append(("this page (and, with --chemiscope, the chemiscope file)", p["command"]))
    out.append(
        ("H, D and log n of each file and of all together", f"atominfo entropy {inputs}{common}")
    )
    curve = f"{common} --sizes {p['n_sizes']} --seeds {p['n_seeds']} --seed {p['seed']}"
    per = group or (" --per-file" if len(report.groups) > 1 else "")
    if per:
        out.append(
            (
                "learning curve of each group (its full-size H is the group's H)",
                f"atominfo curve {inputs}{per}{curve}",
            )
        )
    out.append(("learning curve of the whole dataset", f"atominfo curve {inputs}{curve}"))
    if report.overlap is not None:
        out.append(
            ("overlap matrix between groups", f"atominfo overlap-matrix {inputs}{group}{common}")
        )
    for row in report.compression:
        out.append(
            (
                f"{row['method']} selection of {row['structures']} structures",
                f"atominfo compress {inputs} -s {row['structures']} -m {row['method']}"
                f" --seed {p['seed']}{common} -o {row['method']}_{row['structures']}"
                ".extxyz",
            )
        )
    if report.dH is not None and p.get("reference_files"):
        refs = " ".join(f"--ref {q(str(r))}" for r in p["reference_files"])
        out.append(
            (
                "per-atom dH and novelty against the reference",
                f"atominfo dh {inputs} {refs}{common} -o dH.extxyz",
            )
        )
    return out


# --- the page ----------------------------------------------------------------------------


def render_html(report, *, title: str | None = None) -> str:
    """The report page as text (see the module docstring)."""
    colours = group_colours(report)
    total = report.total
    several = len(report.groups) > 1
    name = title or report.provenance.get("title") or "dataset"
    by = (
        f"grouped by <code>{e(report.group_key)}</code>"
        if report.group_key
        else "grouped by file"
        if several
        else "one group"
    )
    ref_text = ""
    if report.dH is not None:
        ref_files = report.provenance.get("reference_files") or []
        names = ", ".join(Path(r).name for r in ref_files) or "the reference"
        ref_text = f" · reference: {e(names)} ({report.reference_environments} environments)"
    parts = [
        f"<h1>Information report: {e(name)}</h1>",
        f"<p class='sub'>{len(report.data)} structures, {total.environments} "
        f"environments, {len(report.groups)} group{'s' if several else ''} ({by}) · "
        f"h = {report.bandwidth:g} 1/Å{ref_text}</p>",
    ]

    # -- answers first
    whole = report.curves["all"]
    answers = [
        f"<b>How much information?</b> H = {total.entropy:.3f} nats, D = "
        f"{total.diversity:.3f} nats, out of log n = {total.log_n:.3f} nats possible "
        f"(efficiency H / log n = {_pct(total.efficiency)})."
    ]
    answers.append(f"<b>Is it complete?</b> Whole dataset: {_gap_sentence(whole)}")
    msc = [r for r in report.compression if r["method"] == "msc"]
    if msc:
        mid = msc[len(msc) // 2]
        rand = next(
            (
                r
                for r in report.compression
                if r["method"] == "random" and r["structures"] == mid["structures"]
            ),
            None,
        )
        baseline = (
            f" (a random selection of the same size: {_pct(rand['overlap'])})" if rand else ""
        )
        answers.append(
            f"<b>Where is it redundant?</b> keeping {mid['structures']} of "
            f"{mid['total_structures']} structures chosen by msc, "
            f"{_pct(mid['overlap'])} of all environments lie inside the kept ones"
            f"{baseline}; the kept set has H = {mid['entropy']:.3f} nats (full set: "
            f"{total.entropy:.3f}: H per environment rises as near-duplicates go)."
        )
    if report.dH is not None:
        answers.append(
            f"<b>What is new?</b> {_pct(report.novelty['all'])} of the "
            "environments are novel against the reference (dH > 0)."
        )
    else:
        answers.append("<b>What is new?</b> no reference given (run with --ref REF).")
    parts.append("<ul class='answers'>" + "".join(f"<li>{a}</li>" for a in answers) + "</ul>")

    # -- 1. information
    parts.append("<h2>1. How much information does it hold?</h2>")
    rows = [
        [
            f"{_swatch(colours[g.name])}{e(g.name)}",
            g.structures,
            g.environments,
            _num(g.entropy),
            _num(g.diversity),
            _num(g.log_n),
            _pct(g.efficiency),
        ]
        for g in report.information
    ]
    parts.append(
        _table(
            [
                "group",
                "structures",
                "environments",
                "H (nats)",
                "D (nats)",
                "log n (nats)",
                "H / log n",
            ],
            rows,
        )
    )
    parts.append(
        _figure(
            _png(plot_information(report)),
            "Entropy H (solid) is the information of the group's environments; "
            "log n (pale) is its maximum, reached when no two environments are "
            "alike within the bandwidth. A low H / log n means many "
            "near-duplicate environments.",
            "information per group",
        )
    )

    # -- 2. completeness
    parts.append("<h2>2. Is it complete? Learning curves</h2>")
    labels = [n if n != "all" else "all (whole dataset)" for n in report.curves]
    curves_ax = plot_learning_curves(
        list(report.curves.values()),
        labels=labels,
        title=f"Learning curves of {name}: entropy H of random subsets vs size N\n"
        f"({whole.unit}; h = {report.bandwidth:g} 1/Å; {len(whole.seeds)} seeds per "
        "size)",
    )
    parts.append(
        _figure(
            _png(curves_ax),
            "A curve that levels off has saturated: more data of the same kind "
            "adds little information. The information gap is the fitted "
            "asymptote minus H of the full set; it is reported only where the "
            "fit determines it.",
            "learning curves",
        )
    )
    level = next((f"{c.fit.level:.0%}" for c in report.curves.values() if c.fit), "95%")
    parts.append(
        _table(
            [
                "curve",
                f"N ({whole.unit})",
                "H of the full set (nats)",
                "fit",
                f"asymptote ({level} interval)",
                f"information gap ({level} interval)",
            ],
            [_curve_row(n, c, colours[n]) for n, c in report.curves.items()],
        )
    )
    for cname, curve in report.curves.items():
        head = f"<p>{_swatch(colours[cname])}<b>{e(cname)}</b>: "
        lines = [e(line) for line in curve.summary_lines()]
        if curve.determined:
            parts.append(
                head
                + f"{_gap_sentence(curve)}</p><ul>"
                + "".join(f"<li>{line}</li>" for line in lines)
                + "</ul>"
            )
        else:
            parts.append(head + "; ".join(lines) + ".</p>")

    # -- 3. redundancy
    parts.append("<h2>3. Where is it redundant?</h2>")
    if report.overlap is not None:
        ov = plot_overlap_matrix(
            report.overlap,
            title=f"Overlap between the groups of {name}: fraction of "
            f"row group inside column group\n(dH ≤ 0; h = "
            f"{report.bandwidth:g} 1/Å)",
        )
        parts.append(
            _figure(
                _png(ov),
                "Row i, column j: the fraction of group i's "
                "environments inside the domain of group j (dH ≤ 0). A row "
                "close to 1 in another column is largely redundant with that "
                "group. The matrix is not symmetric.",
                "overlap matrix",
            )
        )
    else:
        parts.append("<p>One group: no overlap matrix (give several files or --group-by KEY).</p>")
    if report.compression:
        rows = [
            [
                e(r["method"]),
                r["structures"],
                r["environments"],
                _num(r["entropy"]),
                _num(r["diversity"]),
                _pct(r["overlap"]),
            ]
            for r in report.compression
        ]
        parts.append("<h3>What compression would keep</h3>")
        parts.append(
            _table(
                [
                    "method",
                    "structures kept",
                    "environments",
                    "H (nats)",
                    "D (nats)",
                    "full set inside the kept",
                ],
                rows,
            )
        )
        left, right = plot_compression(
            report.compression,
            total.entropy,
            title=f"Compression of {name}: msc against random selections of equal size "
            f"(h = {report.bandwidth:g} 1/Å)",
        )
        parts.append(
            _figure(
                _png(left),
                "msc (maximum-surprise compression) greedily keeps "
                "the structures that add the most information; random is the "
                "baseline. Right: the share of all environments with dH ≤ 0 "
                "against the kept structures.",
                "compression",
            )
        )
    else:
        parts.append("<p>Too few structures for a compression summary.</p>")

    # -- 4. novelty
    parts.append("<h2>4. What is new against the reference?</h2>")
    if report.dH is None:
        parts.append(
            "<p class='warn'>No reference given: run <code>atominfo report ... "
            "--ref TRAIN.extxyz</code> to measure which environments lie outside "
            "the training set.</p>"
        )
    else:
        rows = [[f"{_swatch(colours[n])}{e(n)}", _pct(v)] for n, v in report.novelty.items()]
        parts.append(_table(["group", "novel environments (dH > 0)"], rows))
        parts.append(
            _figure(
                _png(plot_dh_histograms(report)),
                "dH > 0: the environment lies outside the reference's domain "
                "(new information a model trained on the reference has not "
                "seen).",
                "dH histograms",
            )
        )
        rows = [
            [
                e(Path(s["source"]).name),
                s["source_frame"],
                e(s["group"]),
                s["atoms"],
                _pct(s["novelty"]),
                _num(s["max_dH"]),
            ]
            for s in report.most_novel_structures(TOP)
        ]
        parts.append(f"<h3>The {len(rows)} most novel structures (largest max dH)</h3>")
        parts.append(
            _table(
                ["file", "frame", "group", "atoms", "atoms with dH > 0", "max dH (nats)"],
                rows,
                left=3,
            )
        )
        rows = [
            [
                e(Path(a["source"]).name),
                a["source_frame"],
                a["atom"],
                e(a["element"]),
                e(a["group"]),
                _num(a["dH"]),
            ]
            for a in report.most_novel_atoms(TOP)
        ]
        parts.append(f"<h3>The {len(rows)} most novel atoms</h3>")
        parts.append(
            _table(["file", "frame", "atom", "element", "group", "dH (nats)"], rows, left=5)
        )

    # -- 5. reproduce
    parts.append("<h2>5. How to reproduce every number</h2>")
    commands = _commands(report)
    if commands:
        parts.append(
            "<p>The command that made this page, then one command per section "
            "that prints its numbers (same bandwidth, descriptor and seeds):</p>"
        )
        parts.append(
            "<pre>" + "\n".join(f"# {e(what)}\n{e(cmd)}" for what, cmd in commands) + "</pre>"
        )
    p = report.provenance
    settings = {
        "bandwidth h (1/Å)": f"{report.bandwidth:g}",
        "k": p.get("k", "–"),
        "cutoff (Å)": p.get("cutoff", "–"),
        "group by": report.group_key or "file",
        "learning-curve sizes": p.get("n_sizes"),
        "seeds per size": p.get("n_seeds"),
        "first seed": p.get("seed"),
        "compression fractions": p.get("keep"),
        "descriptor width": p.get("descriptor_width"),
    }
    parts.append(
        "<h3>Settings</h3>"
        + _table(["setting", "value"], [[e(k), e(str(v))] for k, v in settings.items()])
    )
    parts.append(
        "<h3>Package versions</h3>"
        + _table(
            ["package", "version"], [[e(k), e(str(v))] for k, v in p.get("versions", {}).items()]
        )
    )
    prints = [("input", f) for f in p.get("inputs", [])] + [
        ("reference", f) for f in p.get("reference", [])
    ]
    if prints:
        parts.append(
            "<h3>Input fingerprints (SHA-256)</h3>"
            + _table(
                ["role", "file", "bytes", "sha256"],
                [[r, e(f["path"]), f["bytes"], f"<code>{f['sha256']}</code>"] for r, f in prints],
                left=2,
            )
        )
    parts.append(
        f"<footer>atominfo {e(str(p.get('versions', {}).get('atominfo')))} · "
        f"{e(str(p.get('platform', '')))} · entropies in nats, bandwidths in 1/Å"
        "</footer>"
    )
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>Information report: {e(name)}</title><style>{CSS}</style></head>"
        f"<body><main>\n{body}\n</main></body></html>\n"
    )


def write_report_html(path, report, *, title: str | None = None) -> None:
    """Write the report page to `path` (.html) atomically."""
    if not str(path).endswith((".html", ".htm")):
        raise InputError("report page must end in .html", source=str(path))
    text = render_html(report, title=title)
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
