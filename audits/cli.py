"""`audits`: run audits, check and list rules, record review decisions, start the scheduler."""

from __future__ import annotations

from collections import Counter
from contextlib import nullcontext
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from audits.locks import Busy
from audits.yamlio import YamlFileError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help="政府信息公开工作年度报告审核工具")
rules_app = typer.Typer(no_args_is_help=True, help="检查或列出规则文件")
app.add_typer(rules_app, name="rules")
console = Console(stderr=True)


def _usage_error(message: str) -> None:
    # soft_wrap: a file:line:col and its message stay on one line, whatever the terminal's width.
    lead = "用法错误：\n" if "\n" in message else "用法错误："
    console.print(f"[red]{lead}[/red]{escape(message)}", soft_wrap=True)
    raise typer.Exit(2)


@app.command()
def run(
    inputs: list[Path] = typer.Argument(None, help="报告文件或目录（递归查找）；不给则审核自带样本"),
    rules: Optional[Path] = typer.Option(None, "--rules", help="规则目录（默认 ./rules，否则用安装包自带规则）"),
    out: Path = typer.Option(Path("reports"), "--out", help="输出目录"),
    job: Optional[str] = typer.Option(None, "--job", help="立即运行一次 jobs/ 下的某个定时任务"),
    workers: Optional[int] = typer.Option(None, "--workers", help="并行解析的进程数（默认为 CPU 核数）"),
    config: Optional[Path] = typer.Option(None, "--config", help="配置文件（默认 config/default.toml）"),
    cluster: Optional[str] = typer.Option(
        None, "--cluster", metavar="ADDRESS", help="在 Dask 集群上解析：调度器地址（如 tcp://10.0.0.5:8786），或 local[:N] 在本机启动 N 个工作进程试用"
    ),
) -> None:
    """审核一批年度报告，写出 HTML、findings/documents/cells 文件。"""
    from audits.audit import default_rules_dir, run_audit
    from audits.cluster import ClusterError
    from audits.ingest import display_path

    if job:
        from audits.jobs.history import JobBusy
        from audits.jobs.schedule import run_job_once

        try:
            summary = run_job_once(job, str(config or ""), cluster or "")
        except (YamlFileError, LookupError) as exc:
            _usage_error(str(exc))
        except JobBusy as exc:
            console.print(f"[red]{exc}[/red]，本次未运行")
            raise typer.Exit(1) from None
        except ClusterError as exc:
            _cluster_failed(exc)
        print(f"任务 {job}：{summary}")
        return
    from audits.outputs import OutputFolderError

    missing = [display_path(p) for p in inputs or [] if not p.exists()]
    if missing:
        _usage_error(f"找不到输入：{', '.join(missing)}")
    from audits.jobs.config import load_settings

    rules_dir = rules or default_rules_dir()
    try:
        settings = load_settings(config)
    except YamlFileError as exc:
        _usage_error(str(exc))
    session = nullcontext()
    if cluster:
        from audits.cluster import connect

        session = connect(cluster)
    with Progress(TextColumn("解析"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("parse", total=None)
        try:
            with session as on:
                if on is not None:
                    console.print(escape(on.describe()), soft_wrap=True)
                result = run_audit(list(inputs or []), rules_dir, out, on_progress=lambda n: bar.advance(task, n), workers=workers, settings=settings, cluster=on)
        except (YamlFileError, OutputFolderError) as exc:
            _usage_error(str(exc))
        except Busy as exc:
            console.print(f"[red]{escape(str(exc))}[/red]", soft_wrap=True)
            raise typer.Exit(1) from None
        except ClusterError as exc:
            _cluster_failed(exc)
    f = result.findings
    docs = result.frames.documents
    console.print(
        f"审核了 {docs.height} 份文档（跳过 {_skipped(result.skipped)}）；"
        f"发现 错误 {f.filter(f['severity'] == 'error').height}、警告 {f.filter(f['severity'] == 'warning').height}、"
        f"提示 {f.filter(f['severity'] == 'info').height}。"
    )
    print(f"HTML 审核报告：{(result.out / 'index.html').resolve()}")


def _cluster_failed(exc: Exception) -> None:
    """A cluster that cannot be used is an operational failure (exit 1)."""
    console.print(f"[red]{escape(str(exc))}[/red]", soft_wrap=True)
    raise typer.Exit(1) from None


def _skipped(skipped) -> str:
    """How many files were skipped, by why: "4 个非文档文件、1 个指向输入目录以外的链接"."""
    counts = Counter(item.why for item in skipped)
    return "、".join(f"{n} 个{why}" for why, n in counts.most_common()) or "0 个文件"


@app.command()
def schedule(config: Optional[Path] = typer.Option(None, "--config", help="配置文件（默认 config/default.toml）")) -> None:
    """按 jobs/ 中的计划定时运行审核任务，直到收到 SIGTERM 或 Ctrl-C。"""
    import logging

    from audits.jobs.schedule import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        serve(str(config or ""))
    except YamlFileError as exc:
        _usage_error(str(exc))
    except KeyboardInterrupt:
        pass


@app.command()
def review(
    fingerprint: str = typer.Argument(..., help="发现的指纹（HTML 页面上可复制）"),
    confirm: bool = typer.Option(False, "--confirm", help="确认问题属实"),
    dismiss: bool = typer.Option(False, "--dismiss", help="驳回（不是问题）"),
    comment: str = typer.Option("", "--comment", help="审核意见"),
    by: str = typer.Option("", "--by", help="审核人（默认为当前用户）"),
    config: Optional[Path] = typer.Option(None, "--config", help="配置文件（默认 config/default.toml）"),
) -> None:
    """记录审核人对某条发现的意见；以后每次运行都会在页面上显示。"""
    import getpass
    import re

    from audits.jobs.history import record_decision
    from audits.jobs.config import load_settings

    if confirm == dismiss:
        _usage_error("请且只能选择 --confirm 或 --dismiss 之一")
    if not re.fullmatch(r"[0-9a-f]{16}", fingerprint):
        _usage_error(f"指纹应为 16 位十六进制：{fingerprint}")
    settings = load_settings(config)
    entry = record_decision(settings.state_dir, fingerprint, "确认" if confirm else "驳回", comment, by or getpass.getuser())
    print(f"已记录：{entry['fingerprint']} {entry['decision']} {entry['comment']}")


def _rulebook(folder: Path):
    from audits.rulebook.book import load_rulebook

    try:
        return load_rulebook(folder)
    except YamlFileError as exc:
        _usage_error(str(exc))


@rules_app.command("check")
def rules_check(folder: Path = typer.Argument(Path("rules"), help="规则目录")) -> None:
    """检查规则文件；有错误时指出文件、行、列并以状态 2 退出。"""
    book = _rulebook(folder)
    print(f"{folder}: {len(book.rules)} 条规则，{len(book.layouts)} 个模板版式，全部有效")


@rules_app.command("test")
def rules_test(
    folder: Path = typer.Argument(Path("rules"), help="规则目录（用例在其中的 cases/）"),
    shared: Optional[Path] = typer.Option(None, "--shared", help="真实报告所在的共享资料目录（默认 $AUDITS_SHARED，或规则目录旁的 ../shared）"),
) -> None:
    """运行每条规则的通过与不通过用例；有用例不成立时指出预期与实际的发现，并以状态 1 退出。"""
    import os

    from audits.rulebook.cases import load_cases, run_cases

    book = _rulebook(folder)
    shared = shared or Path(os.environ.get("AUDITS_SHARED") or folder.resolve().parent.parent / "shared")
    outcomes = run_cases(book, load_cases(folder), shared)
    failed = [o for o in outcomes if o.problems]
    skipped = [o for o in outcomes if o.skipped]
    for o in failed:
        print(f"不成立 {o.case.id}")
        for problem in o.problems:
            print(f"    {problem}")
    for o in skipped:
        print(f"跳过 {o.case.id}：{o.skipped}")
    print(f"{len(outcomes)} 个用例：成立 {len(outcomes) - len(failed) - len(skipped)}，不成立 {len(failed)}，跳过 {len(skipped)}")
    if failed:
        raise typer.Exit(1)


@rules_app.command("doc")
def rules_doc(
    folder: Path = typer.Argument(Path("rules"), help="规则目录"),
    out: Path = typer.Option(Path("reports") / "rules.html", "--out", help="写出的规则目录页面"),
) -> None:
    """生成规则目录页面：每个检查种类的参数、占位符和示例，每条规则的名称、级别、依据和用例。"""
    from audits.outputs import write_text
    from audits.rulebook.catalogue import render

    write_text(out, render(_rulebook(folder)))
    print(f"规则目录：{out.resolve()}")


@rules_app.command("list")
def rules_list(folder: Path = typer.Argument(Path("rules"), help="规则目录")) -> None:
    """列出规则：编号、级别、类别、检查种类、执行引擎、名称。"""
    for r in _rulebook(folder).rules:
        print(f"{r.id}\t{r.severity}\t{r.category}\t{r.check.kind}\t{r.engine}\t{r.title}")


if __name__ == "__main__":  # pragma: no cover
    app()
