"""The operator's side: review decisions that reach the job wherever they are typed, a run that says
what it does (in Chinese, the command-line framework's words included), inputs with no report,
--fail-on, logs in the state folder, schedules in Beijing time and crontab lines."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from audits.jobs.config import Schedule, crontab_trigger, crontab_weekdays, load_job
from audits.yamlio import YamlFileError
from tests.conftest import ROOT

CLEAN = (ROOT / "rules" / "cases" / "clean_2021.md").read_text(encoding="utf-8")
CONTACT = "（地址：示例市人民路18号，电话：0571-87654321，电子邮箱：jtj@example.gov.cn）"


def audits(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "AUDITS_CONFIG"} | {"COLUMNS": "80"} | (env or {})
    return subprocess.run([sys.executable, "-m", "audits.cli", *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=600)


def _findings(path: Path) -> list[dict]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


# Review decisions ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """An installation: config/default.toml, one job over an inbox, run once from the command line."""
    root = tmp_path_factory.mktemp("site")
    (root / "config").mkdir()
    (root / "config" / "default.toml").write_text('state_dir = ".state"\njobs_dir = "jobs"\n', encoding="utf-8")
    (root / "jobs").mkdir()
    (root / "jobs" / "k.yaml").write_text(
        f"name: k\nsources:\n  paths: [../inbox]\nrules: {ROOT / 'rules'}\nout: ../out\nschedule:\n  cron: \"0 6 * * 1\"\n",
        encoding="utf-8",
    )
    (root / "inbox").mkdir()
    (root / "inbox" / "report.md").write_text(CLEAN.replace(CONTACT, ""), encoding="utf-8")
    (root / "elsewhere" / "deeper").mkdir(parents=True)
    first = audits("run", "--job", "k", "--workers", "1", "--config", str(root / "config" / "default.toml"))
    assert first.returncode == 0, first.stderr
    contact = next(f for f in _findings(root / "out" / "findings.csv") if f["rule_id"] == "CONTACT")
    return {"root": root, "config": root / "config" / "default.toml", "state": root / ".state", "first": first, "fingerprint": contact["fingerprint"]}


def test_an_unknown_fingerprint_is_refused(site):
    done = audits("review", "0123456789abcdef", "--confirm", "--config", str(site["config"]))
    assert done.returncode == 2
    assert "没有指纹为 0123456789abcdef 的发现" in done.stderr and "未记录" in done.stderr
    assert not (site["state"] / "decisions.jsonl").exists()
    malformed = audits("review", "xyz", "--confirm", "--config", str(site["config"]))
    assert malformed.returncode == 2 and "16 位十六进制" in malformed.stderr


def test_a_decision_made_from_another_folder_reaches_the_next_run(site, tmp_path):
    # Not in the installation and no setting that leads there: refused, and nothing written here.
    lost = audits("review", site["fingerprint"], "--dismiss", cwd=tmp_path)
    assert lost.returncode == 2 and "没有任何任务的运行记录" in lost.stderr and "AUDITS_CONFIG" in lost.stderr
    assert not (tmp_path / ".state").exists()
    # From another folder with AUDITS_CONFIG, and from a folder inside the installation.
    done = audits("review", site["fingerprint"], "--dismiss", "--comment", "机构合并，已核实", "--by", "张三",
                  cwd=tmp_path, env={"AUDITS_CONFIG": str(site["config"])})
    assert done.returncode == 0, done.stderr
    assert "已记录" in done.stdout and "任务 k" in done.stdout
    inside = audits("review", site["fingerprint"], "--confirm", "--comment", "复核后确认", "--by", "李四", cwd=site["root"] / "elsewhere" / "deeper")
    assert inside.returncode == 0, inside.stderr
    entries = [json.loads(line) for line in (site["state"] / "decisions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(e["decision"], e["by"], e["job"], e["rule_id"]) for e in entries] == [("驳回", "张三", "k", "CONTACT"), ("确认", "李四", "k", "CONTACT")]
    listed = audits("review", "--job", "k", cwd=site["root"])
    row = next(line.split("\t") for line in listed.stdout.splitlines() if line.startswith(site["fingerprint"]))
    assert row[1:4] == ["k", "错误", "CONTACT"] and row[7] == "确认"
    again = audits("run", "--job", "k", "--workers", "1", "--fail-on", "error", cwd=tmp_path, env={"AUDITS_CONFIG": str(site["config"])})
    decided = next(f for f in _findings(site["root"] / "out" / "findings.csv") if f["fingerprint"] == site["fingerprint"])
    assert decided["decision"].startswith("确认（李四") and "复核后确认" in decided["decision"]
    assert again.returncode == 3 and "--fail-on error" in again.stderr  # a confirmed error fails the run


def test_a_job_run_logs_to_its_state_folder(site):
    log = (site["state"] / "logs" / "audits.log").read_text(encoding="utf-8")
    assert "信息 任务 k 开始运行" in log and "解析：1/1" in log and "规则：" in log and "任务 k 完成" in log
    assert "日志" in site["first"].stderr and str(site["state"] / "logs" / "audits.log") in site["first"].stderr


# The run's words ----------------------------------------------------------------------------


def test_the_framework_speaks_chinese():
    helped = audits("run", "--help")
    assert helped.returncode == 0
    assert "用法：audits run [选项]" in helped.stdout and "显示本帮助并退出" in helped.stdout and "选项" in helped.stdout
    for english in ("Usage:", "Show this message", "Options", "Arguments", "[default"):
        assert english not in helped.stdout, english
    assert "…" not in helped.stdout and "不给则审核自带样本" in helped.stdout  # wrapped at 80 columns, not cut
    wrong = audits("run", "--no-such-flag")
    assert wrong.returncode == 2
    assert wrong.stderr.splitlines()[0] == "用法错误：没有 --no-such-flag 这个选项"
    assert "No such option" not in wrong.stderr and "Try" not in wrong.stderr
    typo = audits("rn")
    assert typo.returncode == 2 and "没有 rn 这个命令，是不是 run？" in typo.stderr
    number = audits("run", "--workers", "abc")
    assert number.returncode == 2 and "--workers 的值无效（应为正整数，不是“abc”）" in number.stderr
    extra = audits("review", "0123456789abcdef", "more")
    assert extra.returncode == 2 and "多余的参数：more" in extra.stderr
    # A long message is one line, not wrapped at 80 columns mid-phrase.
    long = audits("run", "--fail-on", "严重程度最高的那一类问题" * 4)
    assert long.returncode == 2 and len(long.stderr.splitlines()) == 1, long.stderr
    version = audits("--version")
    assert version.returncode == 0 and version.stdout.startswith("audits（gov-disclosure-audits）0.")


def test_inputs_with_no_report_say_so_and_exit_2(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    done = audits("run", str(empty), "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and "没有可审核的文档" in done.stderr and "没有文件" in done.stderr
    code = tmp_path / "code"
    (code / "pkg").mkdir(parents=True)
    for module in ("cli.py", "audit.py", "progress.py"):
        (code / "pkg" / module).write_text((ROOT / "audits" / module).read_text(encoding="utf-8"), encoding="utf-8")
    (code / "LICENSE").write_text("MIT License\n\nPermission is hereby granted, free of charge, ...\n", encoding="utf-8")
    done = audits("run", str(code), "--out", str(tmp_path / "out"), "--workers", "1")
    assert done.returncode == 2, done.stderr
    assert "没有年度报告" in done.stderr and "1 个文件都不是政府信息公开工作年度报告" in done.stderr
    assert not (tmp_path / "out" / "findings.csv").exists()  # no half audit of a folder of code


def test_a_run_shows_every_stage_and_a_summary_then_fails_on_errors(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "report.md").write_text(CLEAN.replace(CONTACT, ""), encoding="utf-8")
    (inbox / "links.csv").write_text("a,b\n", encoding="utf-8")
    out = tmp_path / "out"
    done = audits("run", str(inbox), "--out", str(out), "--workers", "1", "--fail-on", "error")
    assert done.returncode == 3, done.stderr
    lines = done.stderr.splitlines()
    for stage in ("查找文件：1/1", "解析：1/1", "规则：", "页面：1/1", "输出：9/9"):
        assert any(line.startswith(stage) for line in lines), (stage, done.stderr)
    assert "找到 1 份文档（另跳过 1 个非文档文件）：审核了 1 份，无法读取或不是年度报告 0 份。" in done.stderr
    assert f"结果在 {out.resolve()}" in done.stderr and "index.html" in done.stderr
    assert "有 1 条错误级别的发现（--fail-on error），退出状态 3" in done.stderr
    quiet = audits("run", str(inbox), "--out", str(out), "--workers", "1", "--quiet")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == "", quiet.stderr


# Schedules ----------------------------------------------------------------------------------


def test_crontab_weekdays_are_crontab_weekdays():
    assert crontab_weekdays("1") == "mon"
    assert crontab_weekdays("0") == crontab_weekdays("7") == crontab_weekdays("sun") == "sun"
    assert crontab_weekdays("1-5") == "mon,tue,wed,thu,fri"
    assert crontab_weekdays("*/2") == "sun,tue,thu,sat"
    assert crontab_weekdays("5-7") == "sun,fri,sat"
    assert crontab_weekdays("*") == "*"
    with pytest.raises(ValueError):
        crontab_weekdays("8")


def test_schedules_fire_in_beijing_time_by_default():
    utc = ZoneInfo("UTC")
    sunday_noon = dt.datetime(2024, 6, 2, 12, 0, tzinfo=utc)
    monday = crontab_trigger("0 6 * * 1", "Asia/Shanghai").get_next_fire_time(None, sunday_noon)
    assert (monday.weekday(), monday.hour, monday.utcoffset()) == (0, 6, dt.timedelta(hours=8))
    fields = Schedule.model_validate({"cron": {"hour": 6, "minute": 0}}).trigger("Asia/Shanghai")
    fire = fields.get_next_fire_time(None, sunday_noon)
    assert fire.astimezone(utc) == dt.datetime(2024, 6, 2, 22, 0, tzinfo=utc)  # 06:00 Beijing, not 14:00
    own = Schedule.model_validate({"cron": {"hour": 6, "timezone": "UTC"}}).trigger("Asia/Shanghai")
    assert own.get_next_fire_time(None, sunday_noon).astimezone(utc).hour == 6  # a job's own zone wins


def test_a_bad_crontab_line_is_refused_with_its_line(tmp_path):
    job = tmp_path / "j.yaml"
    job.write_text("name: j\nsources:\n  paths: [x]\nschedule:\n  cron: \"0 6 * 1\"\n", encoding="utf-8")
    with pytest.raises(YamlFileError) as caught:
        load_job(job)
    assert "j.yaml:" in str(caught.value) and "5 个字段" in str(caught.value)
    job.write_text("name: j\nsources:\n  paths: [x]\nschedule:\n  cron: \"0 6 1 * 1\"\n", encoding="utf-8")
    with pytest.raises(YamlFileError, match="同时限定了日期和星期"):
        load_job(job)
