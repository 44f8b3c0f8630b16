#!/usr/bin/env python3
"""Write a benchmark report people can look at: DIR/report.md (with one PNG
bar chart per benchmark beside it) and DIR/report.html (the same, PNGs
embedded), from the DIR/<benchmark>.json files the bench scripts save with
`--report DIR` (or $BENCH_REPORT_DIR; `make bench` sets build/bench-report).

Usage: report.py [DIR]   (default build/bench-report)
"""
import base64
import datetime
import glob
import html
import json
import os
import sys
import textwrap

MACHINE = "one shared 2-core machine; figures, not a test"

# benchmark -> the table columns charted (one panel each), in order; a
# benchmark not listed gets its numeric columns that are not ratios ("x ...")
METRICS = {
    "bench_http": ["req/s", "haproxy CPU us/req", "agent CPU us/answer", "p99 ms"],
    "bench_mail": ["logins/s", "CPU ms/login", "relay MB/s", "kB/idle conn"],
    "bench_lookup": ["lookups/s", "p50 us", "p99 us", "CPU us/call"],
    "bench_ops": ["memcached ops", "LDAP searches"],
}
ORDER = ["bench_http", "bench_mail", "bench_lookup", "bench_ops"]
# rows naming one of these (gatehouse itself; bench_http's "shipped" config)
# are drawn in the accent colour, the peers they are compared with in another
HIGHLIGHT = ("gatehouse", "shipped")


def number(cell):
    """Return <cell> as a float, or None when it is not a plain number."""
    try:
        return float(str(cell).strip())
    except ValueError:
        return None


def columns(bench, table):
    """Return [(index, header)] of the columns charted for <table>."""
    heads = table["headers"]
    want = METRICS.get(bench)
    if want is None:
        want = [h for i, h in enumerate(heads[1:], 1)
                if not h.startswith("x ") and any(number(r[i]) is not None
                                                  for r in table["rows"] if len(r) > i)]
    out = []
    for h in want:
        if h in heads:
            i = heads.index(h)
            if any(number(r[i]) is not None for r in table["rows"] if len(r) > i):
                out.append((i, h))
    return out[:4]


def chart(bench, table, path):
    """Draw one figure for <table> (a horizontal bar panel per charted column,
    one bar per row) into the PNG <path>; return False when nothing is
    numeric."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = columns(bench, table)
    if not cols:
        return False
    names = [r[0] for r in table["rows"]]
    labels = [textwrap.fill(n, 26) for n in names]
    fig, axes = plt.subplots(1, len(cols), figsize=(3.6 * len(cols) + 2.2,
                                                   0.45 * len(labels) + 1.6),
                             squeeze=False, sharey=True)
    for ax, (i, head) in zip(axes[0], cols):
        vals = [number(r[i]) if len(r) > i else None for r in table["rows"]]
        ys = list(range(len(labels)))
        bars = [v if v is not None else 0.0 for v in vals]
        colours = ["#d95f02" if any(w in n for w in HIGHLIGHT) else "#7570b3" for n in names]
        ax.barh(ys, bars, color=colours)
        pos = [v for v in vals if v]
        base = 0.0
        if pos and min(pos) > 0 and max(pos) / min(pos) > 100:
            ax.set_xscale("log")
            base = min(pos) / 2
        for y, v in zip(ys, vals):
            text = " n/a" if v is None else (" %.0f" % v if abs(v) >= 1000 else " %g" % v)
            ax.text(v if v else base, y, text, va="center", fontsize=7)
        ax.set_title(head, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_yticks(ys)
        ax.set_yticklabels(labels)
        ax.invert_yaxis()
        ax.margins(x=0.25)
    fig.suptitle(bench, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def md_table(table):
    """Return <table> as Markdown lines."""
    esc = [[str(c).replace("|", "\\|") for c in row] for row in [table["headers"]] + table["rows"]]
    out = ["| " + " | ".join(esc[0]) + " |", "|" + " --- |" * len(esc[0])]
    out += ["| " + " | ".join(r) + " |" for r in esc[1:]]
    return out


def html_table(table):
    """Return <table> as an HTML fragment."""
    th = "".join("<th>%s</th>" % html.escape(h) for h in table["headers"])
    rows = "".join("<tr>%s</tr>" % "".join("<td>%s</td>" % html.escape(str(c)) for c in r)
                   for r in table["rows"])
    return "<table><tr>%s</tr>%s</table>" % (th, rows)


def load(directory):
    """Return the saved benchmark documents of <directory>, in report order."""
    docs = []
    for p in glob.glob(os.path.join(directory, "*.json")):
        with open(p) as f:
            docs.append(json.load(f))
    rank = {b: i for i, b in enumerate(ORDER)}
    docs.sort(key=lambda d: (rank.get(d["bench"], len(ORDER)), d["bench"]))
    return docs


def write(directory):
    """Write report.md, report.html and the charts into <directory>; return
    the path of report.md, or None when no benchmark saved anything."""
    docs = load(directory)
    if not docs:
        return None
    try:
        import matplotlib  # noqa: F401
        charts = True
    except ImportError:
        sys.stderr.write("report: python3-matplotlib missing (tools/deps.sh): no charts\n")
        charts = False
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    md = ["# gatehouse benchmarks", "",
          "Generated %s by `tools/bench/report.py`; %s." % (when, MACHINE),
          "Each benchmark's own date is under its heading (a benchmark not re-run "
          "keeps its last figures). In the charts gatehouse is orange, its peers purple.", ""]
    hs = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>gatehouse benchmarks"
          "</title><style>body{font-family:sans-serif;max-width:70em;margin:auto}"
          "table{border-collapse:collapse;font-size:85%}td,th{border:1px solid #ccc;"
          "padding:2px 6px}pre{background:#f6f6f6;padding:6px;white-space:pre-wrap}</style>"
          "</head><body><h1>gatehouse benchmarks</h1>",
          "<p>Generated %s by <code>tools/bench/report.py</code>; %s. Each benchmark's own "
          "date is under its heading. In the charts gatehouse is orange, its peers purple.</p>" % (html.escape(when), html.escape(MACHINE))]
    for d in docs:
        b = d["bench"]
        md += ["## %s" % b, "", "Run %s; %s." % (d["date"], MACHINE), ""]
        hs.append("<h2>%s</h2><p>Run %s; %s.</p>" % (html.escape(b), html.escape(d["date"]),
                                                     html.escape(MACHINE)))
        for n, t in enumerate(d["tables"]):
            png = "%s.png" % b if n == 0 else "%s-%d.png" % (b, n + 1)
            if t.get("title"):
                md += [t["title"], ""]
                hs.append("<p>%s</p>" % html.escape(t["title"]))
            if charts and chart(b, t, os.path.join(directory, png)):
                md += ["![%s](%s)" % (b, png), ""]
                with open(os.path.join(directory, png), "rb") as f:
                    data = base64.b64encode(f.read()).decode()
                hs.append("<p><img alt='%s' src='data:image/png;base64,%s'></p>"
                          % (html.escape(b), data))
            md += md_table(t) + [""]
            hs.append(html_table(t))
        if d.get("notes"):
            md += ["```"] + d["notes"] + ["```", ""]
            hs.append("<pre>%s</pre>" % html.escape("\n".join(d["notes"])))
    hs.append("</body></html>")
    out = os.path.join(directory, "report.md")
    with open(out, "w") as f:
        f.write("\n".join(md))
    with open(os.path.join(directory, "report.html"), "w") as f:
        f.write("\n".join(hs))
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    directory = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "build",
                                                                    "bench-report")
    out = write(directory)
    if out is None:
        print("report: no benchmark results (*.json) in %s" % directory)
        return 1
    print("benchmark report: %s (and report.html, charts embedded)" % os.path.abspath(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
