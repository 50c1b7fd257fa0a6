"""The RESULTS tables of benchmarks/README.md, from benchmarks/results.json.

    .venv/bin/python -m benchmarks.report            # print the tables
    .venv/bin/python -m benchmarks.report --readme   # rewrite them in README.md (between the markers)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def _f(value, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _stamp(run: dict) -> str:
    """`date | commit` of a recorded run; `+` marks uncommitted changes to the measured code."""
    return f"{run['date'][:16].replace('T', ' ')} | {run.get('commit', '')}{'+' if run.get('code_changed_since_commit') else ''}"


def tables(data: dict) -> str:
    out = []
    m = data.get("machine", {})
    out.append(f"Machine: {m.get('cpus')} cores, {m.get('memory_gb')} GB, Python {m.get('python')}, Polars {m.get('polars')}.\n")
    parse = data.get("parse", [])
    if parse:
        out.append("### Parse (`parse_batch`)\n")
        out.append("| date (UTC) | commit | input | N | workers | seconds | reports/s | CPU ms/report | peak tree RSS MB | parent peak MB | largest worker MB | frames MB | other processes (cores) |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in parse:
            out.append(
                f"| {_stamp(r)} | {r['input']} | {_f(r['n'])} | {r['workers']} | {_f(r['seconds'])} | "
                f"{_f(r['reports_per_s'])} | {_f(r.get('cpu_ms_per_report'))} | {_f(r.get('tree_rss_peak_mb'), 0)} | {_f(r.get('self_peak_mb'), 0)} | "
                f"{_f(r.get('children_peak_mb'), 0)} | {_f(r.get('frames_mb'), 0)} | {_f(r.get('other_processes_cores'), 2)} |"
            )
        out.append("")
    convert = data.get("convert", [])
    if convert:
        out.append("### Word 97 conversion (LibreOffice, `word97.convert_many`)\n")
        out.append("| date (UTC) | commit | files | one call per file: first s (CPU s) | then s/file (CPU s) | one call for all: s | s/file (CPU s) | other processes (cores) |")
        out.append("|---|---|---|---|---|---|---|---|")
        for r in convert:
            out.append(
                f"| {_stamp(r)} | {_f(r['n'])} | {_f(r['alone_first_s'], 2)} ({_f(r.get('alone_first_cpu_s'), 2)}) | "
                f"{_f(r['alone_warm_s_per_file'], 2)} ({_f(r.get('alone_warm_cpu_s_per_file'), 2)}) | {_f(r['one_call_s'])} | "
                f"{_f(r['one_call_s_per_file'], 3)} ({_f(r.get('one_call_cpu_s_per_file'), 3)}) | {_f(r.get('other_processes_cores'), 2)} |"
            )
        out.append("")
    scanned = data.get("ocr", [])
    if scanned:
        out.append("### Scanned PDF pages (`read_document`, OCR)\n")
        out.append("| date (UTC) | commit | scans at dpi | rendered at dpi | files | pages | seconds | wall s/page | CPU s/page | engine load s | peak RSS MB | other processes (cores) |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in scanned:
            out.append(
                f"| {_stamp(r)} | {r['dpi']} | {r['render_dpi']} | {r['files']} | {r['pages']} | {_f(r['seconds'])} | {_f(r['wall_s_per_page'], 2)} | "
                f"{_f(r['cpu_s_per_page'], 2)} | {_f(r['engine_load_s'], 2)} | {_f(r.get('self_peak_mb'), 0)} | {_f(r.get('other_processes_cores'), 2)} |"
            )
        out.append("")
    rules = data.get("rules", [])
    if rules:
        out.append("### Rules (`run_rules`)\n")
        out.append("| date (UTC) | commit | N | rules | seconds | findings | reports with findings | import great_expectations s | import pandera s | GX context s | peak RSS MB | frames MB | other processes (cores) |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rules:
            out.append(
                f"| {_stamp(r)} | {_f(r['n'])}{' (profiled)' if 'profiled' in r['key'] else ''} | {r['rules']} | {_f(r['seconds'])} | {_f(r['findings'])} | "
                f"{_f(r['reports_with_findings'])} | {_f(r['import_great_expectations_s'], 2)} | {_f(r['import_pandera_s'], 2)} | {_f(r['gx_context_s'], 2)} | "
                f"{_f(r.get('self_peak_mb'), 0)} | {_f(r['frames'].get('mb'), 0)} | {_f(r.get('other_processes_cores'), 2)} |"
            )
        out.append("")
    render = data.get("render", [])
    if render:
        out.append("### Render (`render_all`)\n")
        out.append("| date (UTC) | commit | N | agencies | pages | seconds | reports/s | HTML MB | findings | peak RSS MB | other processes (cores) |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in render:
            out.append(
                f"| {_stamp(r)} | {_f(r['n'])}{' (profiled)' if 'profiled' in r['key'] else ''} | {_f(r['agencies'])} | {_f(r['pages_written'])} | "
                f"{_f(r['seconds'])} | {_f(r['reports_per_s'])} | {_f(r['html_mb'])} | {_f(r['findings'])} | {_f(r.get('self_peak_mb'), 0)} | "
                f"{_f(r.get('other_processes_cores'), 2)} |"
            )
        out.append("")
    cluster = data.get("cluster", [])
    if cluster:
        out.append("### Cluster (`run_audit`, the built-in pool and a LocalCluster, same corpus, one invocation)\n")
        out.append("| date (UTC) | commit | configuration | N | PDFs | seconds | parse s | rules, HTML, files s | cluster start s | parse CPU ms/report (tree) | tree CPU s | peak tree RSS MB | findings | same findings | other processes (cores) |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in sorted(cluster, key=lambda r: (r["date"][:13], r["config"] != "workers=2")):
            out.append(
                f"| {_stamp(r)} | {r['config']} | {_f(r['n'])} | {_f(r['pdf'])} | {_f(r['seconds'])} | {_f(r['parse_s'])} | {_f(r['after_parse_s'])} | "
                f"{_f(r['connect_s'])} | {_f(r.get('parse_cpu_ms_per_report'))} | {_f(r['tree_cpu_s'])} | {_f(r['tree_rss_peak_mb'], 0)} | {_f(r['findings'])} | "
                f"{'yes' if r.get('identical_findings') else 'no'} | {_f(r.get('other_processes_cores'), 2)} |"
            )
        out.append("")
    for run in data.get("cluster_projection", []):
        a = run["assumptions"]
        out.append(
            f"### Projection for a national year ({_stamp(run)}; measured: {run['cpu_s_per_text'] * 1000:.1f} CPU ms per text/HTML report, "
            f"{run['cpu_s_per_pdf'] * 1000:.0f} per text-layer PDF in one process; assumed: {a['cores_per_machine']} cores a machine, "
            f"{a['pdf_share']:.0%} PDFs of which {a['scanned_share_of_pdf']:.0%} scans of {a['pages_per_scan']} pages, OCR "
            f"{'–'.join(f'{x:g}' for x in a['ocr_cpu_s_per_page'])} CPU s a page, {a['network_gbit_s']} Gbit/s to the client)\n"
        )
        out.append("| reports | OCR CPU s/page | machines | parse CPU h | parse h | client h (gather, rules, HTML, files) | total h | frames GB on the client |")
        out.append("|---|---|---|---|---|---|---|---|")
        for row in run["rows"]:
            out.append(
                f"| {_f(row['documents'])} | {row['ocr_s_per_page']:g} | {row['machines']} × {row['cores']} | {_f(row['parse_cpu_h'])} | {_f(row['parse_h'], 2)} | "
                f"{_f(row['client_h'], 2)} | {_f(row['total_h'], 2)} | {_f(row.get('frames_gb'))} |"
            )
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readme", action="store_true")
    args = ap.parse_args(argv)
    data = json.loads((HERE / "results.json").read_text(encoding="utf-8"))
    text = tables(data)
    if not args.readme:
        print(text)
        return 0
    readme = HERE / "README.md"
    body = readme.read_text(encoding="utf-8")
    if BEGIN not in body:
        raise SystemExit(f"README.md has no {BEGIN} marker")
    head, rest = body.split(BEGIN, 1)
    tail = rest.split(END, 1)[1] if END in rest else ""
    readme.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
