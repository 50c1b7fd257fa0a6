"""`audits`: run audits, check and list rules, record review decisions, start the scheduler.

Everything it says is Chinese, the command-line framework's own words included (audits/cli_zh.py).
Exit status: 0 the audit ran; 2 a usage error or inputs holding no report; 1 an operational
failure (a job already running); 3 findings at or above `--fail-on`.
"""

from __future__ import annotations

import gc
import sys
from collections import Counter
from contextlib import nullcontext
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from audits.cli_zh import Command, Group, UsageError, print_usage_error
from audits.locks import Busy
from audits.yamlio import YamlFileError

app = typer.Typer(cls=Group, options_metavar="[选项]", subcommand_metavar="命令 [参数]...", add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help="政府信息公开工作年度报告审核工具")
rules_app = typer.Typer(cls=Group, options_metavar="[选项]", subcommand_metavar="命令 [参数]...", no_args_is_help=True, help="检查、测试、列出规则文件，生成规则目录")
app.add_typer(rules_app, name="rules")
console = Console(stderr=True)

CONFIG_HELP = "配置文件（默认：环境变量 AUDITS_CONFIG，否则当前目录或其上级目录中的 config/default.toml）"
FAILS = {"error": ["error"], "warning": ["error", "warning"]}


def _usage_error(message: str) -> None:
    # soft_wrap: a file:line:col and its message stay on one line, whatever the terminal's width.
    lead = "用法错误：\n" if "\n" in message else "用法错误："
    console.print(f"[red]{lead}[/red]{escape(message)}", soft_wrap=True)
    raise typer.Exit(2)


def _settings(config: Optional[Path]):
    from audits.jobs.config import load_settings

    try:
        return load_settings(config)
    except (YamlFileError, LookupError) as exc:
        _usage_error(str(exc))


def _settings_hint(settings) -> str:
    used = f"用的配置文件是 {settings.source}" if settings.source else "没有找到配置文件，用的是默认值"
    return f"（{used}；请在安装目录中运行，或用 --config 或环境变量 AUDITS_CONFIG 指定任务所用的配置文件）"


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"audits（gov-disclosure-audits）{version('gov-disclosure-audits')}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", help="显示版本并退出", callback=_version, is_eager=True),
) -> None:
    """政府信息公开工作年度报告审核工具"""


def _positive_int(text: str) -> int:
    # Our own conversion, so that a wrong value is refused in Chinese, not in the framework's words.
    if not text.strip().isdigit() or int(text) < 1:
        raise typer.BadParameter(f"应为正整数，不是“{text}”")
    return int(text)


@app.command(cls=Command, options_metavar="[选项]", short_help="审核一批年度报告（或运行一次定时任务）")
def run(
    inputs: list[Path] = typer.Argument(None, help="报告文件或目录（递归查找）；不给则审核自带样本", show_default=False, metavar="报告文件或目录"),
    rules: Optional[Path] = typer.Option(None, "--rules", metavar="目录", help="规则目录（默认 ./rules，否则用安装包自带规则）"),
    out: Path = typer.Option(Path("reports"), "--out", metavar="目录", help="输出目录"),
    job: Optional[str] = typer.Option(None, "--job", metavar="任务名", help="立即运行一次 jobs/ 下的某个定时任务"),
    workers: Optional[int] = typer.Option(None, "--workers", metavar="进程数", parser=_positive_int, help="解析和写页面的进程数（默认为 CPU 核数）"),
    config: Optional[Path] = typer.Option(None, "--config", metavar="文件", help=CONFIG_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="不显示进度和总结，只显示错误"),
    fail_on: Optional[str] = typer.Option(None, "--fail-on", metavar="级别", help="有此级别（error 或 warning，含更严重的）的发现时以状态 3 退出；被审核人驳回的不算"),
    cluster: Optional[str] = typer.Option(
        None, "--cluster", metavar="地址", help="在 Dask 集群上解析：调度器地址（如 tcp://10.0.0.5:8786）；local 或 local:4 在本机启动临时集群（4 个工作进程）试用；配合 --job 时代替配置文件中的集群地址"
    ),
) -> None:
    """审核一批年度报告，写出 HTML 页面和 findings/documents/cells 文件；--job 则运行一次定时任务。

    退出状态：0 审核完成（无论发现多少问题）；2 用法错误或输入中没有年度报告；1 运行失败；3 有 --fail-on 所指级别的发现。
    """
    from audits.audit import NoDocuments, default_rules_dir, run_audit
    from audits.cluster import ClusterError, connect
    from audits.ingest import display_path
    from audits.outputs import OutputFolderError
    from audits.progress import Stages

    if fail_on is not None and fail_on not in FAILS:
        _usage_error(f"--fail-on 只能是 error 或 warning，不是“{fail_on}”")
    if job:
        _run_job(job, config, workers, quiet, fail_on, cluster or "")
        return
    missing = [display_path(p) for p in inputs or [] if not p.exists()]
    if missing:
        _usage_error(f"找不到输入：{', '.join(missing)}")
    settings = _settings(config)
    rules_dir = rules or default_rules_dir()
    stages = Stages(None if quiet else console)
    try:
        with connect(cluster) if cluster else nullcontext() as on:
            if on is not None and not quiet:
                console.print(escape(on.describe()), soft_wrap=True, highlight=False)
            result = run_audit(list(inputs or []), rules_dir, out, workers=workers, settings=settings, stages=stages, cluster=on)
    except (YamlFileError, OutputFolderError) as exc:
        _usage_error(str(exc))
    except Busy as exc:
        console.print(f"[red]{escape(str(exc))}[/red]", soft_wrap=True)
        raise typer.Exit(1) from None
    except ClusterError as exc:
        _cluster_failed(exc)
    except NoDocuments as exc:
        console.print(f"[red]没有可审核的年度报告：[/red]{escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    finally:
        stages.close()
    if not quiet:
        _summary(result)
    _fail_on(fail_on, result.findings)


def _summary(result) -> None:
    """How many documents were found, audited, skipped and unreadable, and where everything is."""
    docs, f = result.frames.documents, result.findings
    failed = docs.filter(docs["status"] == "failed").height
    out = result.out.resolve()
    count = {s: f.filter(f["severity"] == s).height for s in ("error", "warning", "info")}
    lines = [
        f"找到 {docs.height} 份文档（另跳过 {_skipped(result.skipped)}）：审核了 {docs.height - failed} 份，"
        f"无法读取或不是年度报告 {failed} 份" + ("（各有一条“文件无法读取”的发现）。" if failed else "。"),
        f"发现：错误 {count['error']}、警告 {count['warning']}、提示 {count['info']}。",
        f"结果在 {out}：index.html（总览，每个机关一页）、findings.xlsx（问题与报告）、findings.csv、documents.csv、"
        f"cells.csv（及同名 .parquet）、rules.html（规则目录）、gx_validation.json。",
    ]
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False)
    print(f"HTML 审核报告：{out / 'index.html'}")


def _cluster_failed(exc: Exception) -> None:
    """A cluster that cannot be used is an operational failure (exit 1)."""
    console.print(f"[red]{escape(str(exc))}[/red]", soft_wrap=True)
    raise typer.Exit(1) from None


def _skipped(skipped) -> str:
    """How many files were skipped, by why: "4 个非文档文件、1 个指向输入目录以外的链接"."""
    counts = Counter(item.why for item in skipped)
    return "、".join(f"{n} 个{why}" for why, n in counts.most_common()) or "0 个文件"


def _fail_on(level: Optional[str], findings) -> None:
    """Exit 3 when findings of `level` or worse remain (those a reviewer dismissed do not count)."""
    import polars as pl

    if level is None:
        return
    hits = findings.filter(pl.col("severity").is_in(FAILS[level]))
    if "decision_state" in hits.columns:
        hits = hits.filter(pl.col("decision_state").fill_null("") != "dismissed")
    if hits.height:
        what = "错误" if level == "error" else "错误或警告"
        console.print(f"有 {hits.height} 条{what}级别的发现（--fail-on {level}），退出状态 3", soft_wrap=True)
        raise typer.Exit(3)


def _run_job(name: str, config: Optional[Path], workers: Optional[int], quiet: bool, fail_on: Optional[str], cluster: str) -> None:
    """`audits run --job NAME`: one run of a job, logged to the state folder like the scheduler's;
    `cluster` overrides the settings' `[cluster] address`."""
    import logging

    from audits.cluster import ClusterError
    from audits.jobs.history import JobBusy
    from audits.jobs.logs import logging_to
    from audits.jobs.schedule import run_job_once
    from audits.progress import Stages

    settings = _settings(config)
    log = logging.getLogger("audits.run")
    with logging_to(settings.state_dir) as log_path:
        stages = Stages(None if quiet else console, log=log)
        try:
            summary, result = run_job_once(name, str(settings.source or ""), stages, workers, cluster)
        except (YamlFileError, LookupError) as exc:
            log.error("任务 %s 未能运行：%s", name, exc)
            _usage_error(str(exc))
        except JobBusy as exc:
            log.warning("%s，本次未运行", exc)
            console.print(f"[red]{exc}[/red]，本次未运行")
            raise typer.Exit(1) from None
        except ClusterError as exc:
            log.error("任务 %s 未能运行：%s", name, exc)
            _cluster_failed(exc)
        except Exception:
            log.exception("任务 %s 运行出错", name)  # the traceback in the log too, for whoever reads it later
            raise
        finally:
            stages.close()
    if not quiet:
        console.print(f"任务 {name}：{summary}", soft_wrap=True, highlight=False)
        console.print(f"状态目录 {settings.state_dir}；日志 {log_path}", soft_wrap=True, highlight=False)
    _fail_on(fail_on, result.findings)


@app.command(cls=Command, options_metavar="[选项]", short_help="按计划定时运行 jobs/ 中的审核任务")
def schedule(config: Optional[Path] = typer.Option(None, "--config", metavar="文件", help=CONFIG_HELP)) -> None:
    """按 jobs/ 中的计划定时运行审核任务，直到收到 SIGTERM 或 Ctrl-C；日志同时写入状态目录的 logs/audits.log。"""
    from audits.jobs.schedule import serve

    settings = _settings(config)
    try:
        serve(str(settings.source or ""))
    except YamlFileError as exc:
        _usage_error(str(exc))
    except KeyboardInterrupt:
        pass


@app.command(cls=Command, options_metavar="[选项]", short_help="记录审核意见；不给指纹时列出各任务当前的发现及其指纹")
def review(
    fingerprint: Optional[str] = typer.Argument(None, metavar="指纹", help="发现的指纹（16 位十六进制，页面上可复制）；不给则列出当前的发现"),
    confirm: bool = typer.Option(False, "--confirm", help="确认问题属实"),
    dismiss: bool = typer.Option(False, "--dismiss", help="驳回（不是问题）"),
    comment: str = typer.Option("", "--comment", metavar="文字", help="审核意见"),
    by: str = typer.Option("", "--by", metavar="姓名", help="审核人（默认为当前用户）"),
    job: Optional[str] = typer.Option(None, "--job", metavar="任务名", help="只看这个任务的发现"),
    config: Optional[Path] = typer.Option(None, "--config", metavar="文件", help=CONFIG_HELP),
) -> None:
    """记录审核人对某条发现的意见（确认或驳回），此后每次运行都显示在页面上；不给指纹时列出各任务最近一次运行的发现及其指纹。

    指纹须是任务运行中出现过的发现。意见保存在任务的状态目录（配置文件的 state_dir）中：在哪个目录下运行本命令都一样，只要用的是同一个配置文件。
    """
    import getpass
    import re

    from audits.jobs.history import Store, decisions, history_exists, record_decision

    if fingerprint is not None and confirm == dismiss:
        _usage_error("请且只能选择 --confirm 或 --dismiss 之一")
    if fingerprint is None and (confirm or dismiss):
        _usage_error("请给出要审核的发现的指纹（不带参数运行 audits review 可列出）")
    if fingerprint is not None and not re.fullmatch(r"[0-9a-f]{16}", fingerprint):
        _usage_error(f"指纹应为 16 位十六进制数字（0-9、a-f）：{fingerprint}")
    settings = _settings(config)
    state = settings.state_dir
    if not history_exists(state):
        _usage_error(f"状态目录 {state} 中没有任何任务的运行记录，无法核对指纹；{_settings_hint(settings)}")
    store = Store(state)
    try:
        known_jobs = store.jobs()
        if job is not None and job not in known_jobs:
            _usage_error(f"状态目录 {state} 中没有任务 {job} 的运行记录（有记录的任务：{'、'.join(known_jobs) or '无'}）")
        if fingerprint is None:
            _list_findings(store.current_findings(job), decisions(state))
            return
        finding = store.seen(fingerprint, job)
    finally:
        store.close()
    if finding is None:
        scope = f"任务 {job}" if job else f"状态目录 {state} 中的任务（{'、'.join(known_jobs)}）"
        _usage_error(f"{scope}的运行记录中没有指纹为 {fingerprint} 的发现，未记录；不带指纹运行 audits review 可列出当前的发现。{_settings_hint(settings)}")
    entry = record_decision(state, fingerprint, "确认" if confirm else "驳回", comment, by or getpass.getuser(), finding)
    print(
        f"已记录：{fingerprint}（{finding['agency'] or finding['agency_id']} {finding['report_year']} 年 {finding['rule_id']}）"
        f"{entry['decision']}{('：' + comment) if comment else ''}。任务 {finding['job']} 下次运行时显示在页面上；"
        f"意见文件 {state / 'decisions.jsonl'}"
    )


def _list_findings(rows: list[dict], decided: dict[str, dict]) -> None:
    severity = {"error": "错误", "warning": "警告", "info": "提示"}
    state = {"new": "新发现", "open": "仍存在"}
    print("指纹\t任务\t级别\t规则\t机关\t年度\t状态\t审核意见\t说明")
    for r in rows:
        d = decided.get(r["fingerprint"])
        print("\t".join(str(v) for v in (
            r["fingerprint"], r["job"], severity.get(r["severity"], r["severity"]), r["rule_id"], r["agency"] or "",
            r["report_year"] or "", state.get(r["state"], r["state"] or ""), d["decision"] if d else "", r["message"],
        )))
    print(f"共 {len(rows)} 条发现，其中已有审核意见 {sum(r['fingerprint'] in decided for r in rows)} 条", file=sys.stderr)


def _rulebook(folder: Path):
    from audits.rulebook.book import load_rulebook

    try:
        return load_rulebook(folder)
    except YamlFileError as exc:
        _usage_error(str(exc))


@rules_app.command("check", cls=Command, options_metavar="[选项]", short_help="检查规则文件")
def rules_check(folder: Path = typer.Argument(Path("rules"), help="规则目录")) -> None:
    """检查规则文件；有错误时指出文件、行、列并以状态 2 退出。"""
    book = _rulebook(folder)
    print(f"{folder}: {len(book.rules)} 条规则，{len(book.layouts)} 个模板版式，全部有效")


@rules_app.command("test", cls=Command, options_metavar="[选项]", short_help="运行每条规则的用例")
def rules_test(
    folder: Path = typer.Argument(Path("rules"), help="规则目录（用例在其中的 cases/）"),
    shared: Optional[Path] = typer.Option(None, "--shared", help="真实报告所在的共享资料目录（默认 $AUDITS_SHARED，或规则目录旁的 ../shared）"),
    rule: Optional[list[str]] = typer.Option(None, "--rule", help="只运行这条规则的用例（可重复）"),
) -> None:
    """运行每条规则的通过与不通过用例；有用例不成立时指出预期与实际的发现，并以状态 1 退出。"""
    import os

    from audits.rulebook.cases import load_cases, run_cases

    book = _rulebook(folder)
    shared = shared or Path(os.environ.get("AUDITS_SHARED") or folder.resolve().parent.parent / "shared")
    cases = load_cases(folder)
    if rule:
        unknown = sorted(set(rule) - {c.rule for c in cases})
        if unknown:
            _usage_error(f"没有这些规则的用例：{'、'.join(unknown)}")
        cases = [c for c in cases if c.rule in rule]
    outcomes = run_cases(book, cases, shared)
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


@rules_app.command("doc", cls=Command, options_metavar="[选项]", short_help="生成规则目录页面")
def rules_doc(
    folder: Path = typer.Argument(Path("rules"), help="规则目录"),
    out: Path = typer.Option(Path("reports") / "rules.html", "--out", help="写出的规则目录页面"),
) -> None:
    """生成规则目录页面：每个检查种类的参数、占位符和示例，每条规则的名称、级别、依据和用例。"""
    from audits.outputs import write_text
    from audits.rulebook.catalogue import render

    write_text(out, render(_rulebook(folder)))
    print(f"规则目录：{out.resolve()}")


@rules_app.command("list", cls=Command, options_metavar="[选项]", short_help="列出规则")
def rules_list(folder: Path = typer.Argument(Path("rules"), help="规则目录")) -> None:
    """列出规则：编号、级别、类别、检查种类、执行引擎、名称。"""
    for r in _rulebook(folder).rules:
        print(f"{r.id}\t{r.severity}\t{r.category}\t{r.check.kind}\t{r.engine}\t{r.title}")


def main() -> None:
    """The `audits` command: usage errors are printed in Chinese on one line each, without a box."""
    command = typer.main.get_command(app)
    try:
        code = command.main(prog_name="audits", standalone_mode=False)
    except UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            code = 0  # a bare `audits` or `audits rules`: the help has been shown, nothing went wrong
        else:
            print_usage_error(exc, console)
            code = 2
    except typer.Abort:
        console.print("已中止。")
        code = 1
    # Everything is written. Without this the collector walks every object of Great Expectations,
    # pandas and scipy once more while the interpreter shuts down: ~0.5 s of each run's exit.
    gc.freeze()
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
