"""The dataset report as one self-contained HTML page.

`write_report_html` writes a `DatasetReport` (`atominfo.workflows.report`)
as a single file that makes no request to anything outside it: the style is
inline CSS, every figure an embedded base64 PNG, and there is no script. It
opens offline, can be mailed or attached to a lab notebook, and answers, in
order: how much information the dataset holds, whether it is complete, where
it is redundant, what is new against the reference, and how to reproduce
every number (commands, package versions, input fingerprints). Each answer
is one section builder below (`render_html` puts them in order); the
figures specific to the page are in `atominfo.outputs.report_figures`.
"""

from __future__ import annotations

import html
import math
import shlex
from pathlib import Path

from atominfo.errors import InputError
from atominfo.outputs.plots import plot_compression, plot_learning_curves, plot_overlap_matrix
from atominfo.outputs.report_figures import (
    figure_uri,
    group_colours,
    plot_dh_histograms,
    plot_information,
)
from atominfo.runs.atomic import atomic_output

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


def _curve_row(name, curve, colour) -> list:
    test, ai, gi = curve.test, curve.asymptote_interval, curve.gap_interval()
    return [
        f"{_swatch(colour)}{e(name)}",
        curve.total,
        _num(curve.entropy_at(curve.total)),
        e(curve.status),
        "–"
        if test.interval is None
        else f"{_num(test.rise, 3)} ({_num(test.interval[0], 3)} to {_num(test.interval[1], 3)})",
        "–"
        if curve.asymptote is None
        else _num(curve.asymptote) + (f" ({_num(ai[0])} to {_num(ai[1])})" if ai else ""),
        "–"
        if curve.gap() is None
        else _num(curve.gap(), 3) + (f" ({_num(gi[0], 3)} to {_num(gi[1], 3)})" if gi else ""),
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
    if p.get("species_descriptor") == "multicomponent":  # every number of a --species page
        common += " --multicomponent"
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
    if report.species is not None:
        plain = " --species-descriptor plain" if p.get("species_descriptor") == "plain" else ""
        flags = f" -b {report.bandwidth:g} -k {p.get('k', 32)} -c {p.get('cutoff', 5.0):g}"
        out.append(("per-species H and D", f"atominfo entropy {inputs} --species{plain}{flags}"))
        out.append(
            (
                "learning curve of each species",
                f"atominfo curve {inputs} --species{plain}{flags} --sizes {p['n_sizes']} "
                f"--seeds {p['n_seeds']} --seed {p['seed']}",
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
    name = title or report.provenance.get("title") or "dataset"
    colours = group_colours(report)
    parts = [
        *_heading(report, name),
        _answers(report),
        *_information_section(report, colours),
        *_completeness_section(report, name, colours),
        *_species_section(report),
        *_redundancy_section(report, name),
        *_novelty_section(report, colours),
        *_reproduce_section(report),
    ]
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>Information report: {e(name)}</title><style>{CSS}</style></head>"
        f"<body><main>\n{body}\n</main></body></html>\n"
    )


def _heading(report, name: str) -> list[str]:
    """The title and the line under it: sizes, grouping, bandwidth, reference."""
    total = report.total
    several = len(report.groups) > 1
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
    return [
        f"<h1>Information report: {e(name)}</h1>",
        f"<p class='sub'>{len(report.data)} structures, {total.environments} "
        f"environments, {len(report.groups)} group{'s' if several else ''} ({by}) · "
        f"h = {report.bandwidth:g} 1/Å{ref_text}</p>",
    ]


def _answers(report) -> str:
    """The four answers first, in one list."""
    total = report.total
    answers = [
        f"<b>How much information?</b> H = {total.entropy:.3f} nats, D = "
        f"{total.diversity:.3f} nats, out of log n = {total.log_n:.3f} nats possible "
        f"(efficiency H / log n = {_pct(total.efficiency)})."
    ]
    answers.append(f"<b>Is it complete?</b> Whole dataset: {e(report.curves['all'].headline())}.")
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
    return "<ul class='answers'>" + "".join(f"<li>{a}</li>" for a in answers) + "</ul>"


def _information_section(report, colours) -> list[str]:
    """1. H, D, log n and H / log n per group, and their bars."""
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
    headers = [
        "group",
        "structures",
        "environments",
        "H (nats)",
        "D (nats)",
        "log n (nats)",
        "H / log n",
    ]
    return [
        "<h2>1. How much information does it hold?</h2>",
        _table(headers, rows),
        _figure(
            figure_uri(plot_information(report)),
            "Entropy H (solid) is the information of the group's environments; "
            "log n (pale) is its maximum, reached when no two environments are "
            "alike within the bandwidth. A low H / log n means many "
            "near-duplicate environments.",
            "information per group",
        ),
    ]


def _completeness_section(report, name: str, colours) -> list[str]:
    """2. The learning curves, their fits and the information gap of each."""
    whole = report.curves["all"]
    labels = [n if n != "all" else "all (whole dataset)" for n in report.curves]
    curves_ax = plot_learning_curves(
        list(report.curves.values()),
        labels=labels,
        title=f"Learning curves of {name}: entropy H of random subsets vs size N\n"
        f"({whole.unit}; h = {report.bandwidth:g} 1/Å; {len(whole.seeds)} seeds per "
        "size)",
    )
    level = f"{whole.test.level:.0%}"
    parts = [
        "<h2>2. Is it complete? Learning curves</h2>",
        _figure(
            figure_uri(curves_ax),
            f"Each curve is classified by the rise of H per doubling of N at the full "
            f"size: {e(whole.test.rule)}. Only a curve still rising is extrapolated: "
            "its information gap (fitted asymptote minus H of the full set) is given "
            "where the fit passes its checks.",
            "learning curves",
        ),
        _table(
            [
                "curve",
                f"N ({whole.unit})",
                "H of the full set (nats)",
                "class",
                f"rise per doubling (nats, {level} interval)",
                f"asymptote ({level} interval)",
                f"information gap ({level} interval)",
            ],
            [_curve_row(n, c, colours[n]) for n, c in report.curves.items()],
        ),
    ]
    for cname, curve in report.curves.items():
        head = f"<p>{_swatch(colours[cname])}<b>{e(cname)}</b>: "
        lines = [e(line) for line in curve.summary_lines()[1:]]  # the rule is said above
        parts.append(head + "</p><ul>" + "".join(f"<li>{line}</li>" for line in lines) + "</ul>")
    return parts


def _species_section(report) -> list[str]:
    """2b. With --species: H(X|z), D, n and share of each species, and their curves."""
    if report.species is None:
        return []
    r, curve = report.species.entropy, report.species.curve
    rows = [
        [e(s), int(n), _pct(p), _num(H), _num(D), _num(logn), e(curve.curves[s].status)]
        for s, n, p, H, D, logn in zip(r.species, r.n, r.p, r.entropy, r.diversity, r.log_n)
    ]
    rows.append(
        [
            "joint",
            int(sum(r.n)),
            "100%",
            _num(r.total),
            _num(r.total_diversity),
            "",
            e(curve.curves["joint"].status),
        ]
    )
    rows.append(["H(species)", "", "", _num(r.chemical), "", "", ""])
    headers = [
        "species",
        "environments",
        "share",
        "H(X|z) (nats)",
        "D (nats)",
        "log n (nats)",
        "learning curve",
    ]
    ax = plot_learning_curves(list(curve.curves.values()), labels=list(curve.curves))
    ax.set_title(
        f"Learning curve of each species: H(X|z) of random subsets vs size N "
        f"({curve.unit}; h = {report.bandwidth:g} 1/Å)",
        fontsize=10,
    )
    described = "" if curve.descriptor is None else f" ({e(curve.descriptor)} descriptor)"
    return [
        "<h2>Which element's environments? Per species</h2>",
        f"<p>Each centre species against the same species{described}: H(X|z) and D of "
        "each species' environments, the chemical term "
        "H(species) = -Σ p(z) log p(z), and the joint H = H(species) + Σ p(z) H(X|z). "
        f"{e(curve.verdict())}.</p>",
        _table(headers, rows),
        _figure(
            figure_uri(ax),
            "The learning curve of each species (its H(X|z) on the same random subsets "
            "as the curves above; a species' curve starts where every seed's subset holds "
            "it) and of the joint H, each classified by the same rule. A species still "
            "rising is one whose environments are still missing.",
            "learning curve of each species",
        ),
    ]


def _redundancy_section(report, name: str) -> list[str]:
    """3. The overlap matrix between groups and what compression would keep."""
    parts = ["<h2>3. Where is it redundant?</h2>"]
    if report.overlap is not None:
        ov = plot_overlap_matrix(
            report.overlap,
            title=f"Overlap between the groups of {name}: fraction of "
            f"row group inside column group\n(dH ≤ 0; h = "
            f"{report.bandwidth:g} 1/Å)",
        )
        parts.append(
            _figure(
                figure_uri(ov),
                "Row i, column j: the fraction of group i's "
                "environments inside the domain of group j (dH ≤ 0). A row "
                "close to 1 in another column is largely redundant with that "
                "group. The matrix is not symmetric.",
                "overlap matrix",
            )
        )
    else:
        parts.append("<p>One group: no overlap matrix (give several files or --group-by KEY).</p>")
    if not report.compression:
        parts.append("<p>Too few structures for a compression summary.</p>")
        return parts
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
    headers = [
        "method",
        "structures kept",
        "environments",
        "H (nats)",
        "D (nats)",
        "full set inside the kept",
    ]
    left, _ = plot_compression(
        report.compression,
        report.total.entropy,
        title=f"Compression of {name}: msc against random selections of equal size "
        f"(h = {report.bandwidth:g} 1/Å)",
    )
    parts += [
        "<h3>What compression would keep</h3>",
        _table(headers, rows),
        _figure(
            figure_uri(left),
            "msc (maximum-surprise compression) greedily keeps "
            "the structures that add the most information; random is the "
            "baseline. Right: the share of all environments with dH ≤ 0 "
            "against the kept structures.",
            "compression",
        ),
    ]
    return parts


def _novelty_section(report, colours) -> list[str]:
    """4. Novelty per group, the dH histograms, the most novel structures and atoms."""
    parts = ["<h2>4. What is new against the reference?</h2>"]
    if report.dH is None:
        parts.append(
            "<p class='warn'>No reference given: run <code>atominfo report ... "
            "--ref TRAIN.extxyz</code> to measure which environments lie outside "
            "the training set.</p>"
        )
        return parts
    rows = [[f"{_swatch(colours[n])}{e(n)}", _pct(v)] for n, v in report.novelty.items()]
    parts.append(_table(["group", "novel environments (dH > 0)"], rows))
    parts.append(
        _figure(
            figure_uri(plot_dh_histograms(report)),
            "dH > 0: the environment lies outside the reference's domain "
            "(new information a model trained on the reference has not "
            "seen).",
            "dH histograms",
        )
    )
    structures = [
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
    parts.append(f"<h3>The {len(structures)} most novel structures (largest max dH)</h3>")
    parts.append(
        _table(
            ["file", "frame", "group", "atoms", "atoms with dH > 0", "max dH (nats)"],
            structures,
            left=3,
        )
    )
    atoms = [
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
    parts.append(f"<h3>The {len(atoms)} most novel atoms</h3>")
    parts.append(_table(["file", "frame", "atom", "element", "group", "dH (nats)"], atoms, left=5))
    return parts


def _reproduce_section(report) -> list[str]:
    """5. The commands, settings, package versions and input fingerprints, then the footer."""
    parts = ["<h2>5. How to reproduce every number</h2>"]
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
    return parts


def write_report_html(path, report, *, title: str | None = None) -> None:
    """Write the report page to `path` (.html) atomically."""
    if not str(path).endswith((".html", ".htm")):
        raise InputError("report page must end in .html", source=str(path))
    text = render_html(report, title=title)
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
