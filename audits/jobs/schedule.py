"""APScheduler wiring only: jobs/*.yaml → triggers that call `run_job_by_name`.

The job store is SQLite in the state folder, so scheduled jobs survive a restart. Every job runs
with coalesce, one instance at a time, and the configured misfire grace, in the configured time
zone (Asia/Shanghai unless config says otherwise: a server's clock is often UTC). SIGTERM stops
cleanly. What happens is logged in Chinese, to the console and the state folder's log file.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler

from audits.jobs.config import Settings, load_jobs, load_settings
from audits.jobs.logs import logging_to
from audits.progress import Stages
from audits.yamlio import YamlFileError

log = logging.getLogger("audits.schedule")


def run_job_by_name(name: str, config: str = "") -> str:
    """What the scheduler calls (an importable function with simple arguments, as the job store needs).

    A run that finds the job already running is skipped with a warning (the lock decides); one whose
    job or rule files have become invalid is logged, file and line named, and the scheduler goes on.
    """
    from audits.cluster import ClusterError
    from audits.jobs.history import JobBusy

    try:
        return run_job_once(name, config)[0]
    except JobBusy as exc:
        log.warning("%s，本次跳过", exc)
        return str(exc)
    except (YamlFileError, LookupError, ClusterError) as exc:
        log.error("任务 %s 未能运行：%s", name, exc)
        return f"任务 {name} 未能运行：{exc}"


def run_job_once(name: str, config: str = "", stages: Stages | None = None, workers: int | None = None, cluster: str = ""):
    """One run of a job: (its summary, its result). A busy job raises `JobBusy`; a job that does
    not exist or does not load raises LookupError / YamlFileError; `cluster` overrides the
    settings' `[cluster] address`, and a cluster that cannot be used raises ClusterError."""
    from audits.jobs.run import run_job

    settings = load_settings(Path(config) if config else None)
    if cluster:
        settings = settings.model_copy(update={"cluster": settings.cluster.model_copy(update={"address": cluster})})
    jobs, invalid = load_jobs(settings.jobs_dir)
    skipped = "；".join(str(exc) for exc in invalid)
    if name not in jobs:
        raise LookupError(f"没有名为 {name} 的有效任务（{settings.jobs_dir}）" + (f"；无效的任务文件：{skipped}" if skipped else ""))
    log.info("任务 %s 开始运行（配置 %s，状态目录 %s）", name, settings.source or "默认值", settings.state_dir)
    result = run_job(jobs[name], settings, workers=workers, stages=stages or Stages(log=log))
    docs, f = result.frames.documents, result.findings
    failed = docs.filter(docs["status"] == "failed").height
    new = f.filter(f["state"] == "new").height if "state" in f.columns else f.height
    resolved = result.resolved.height if result.resolved is not None else 0
    dismissed = f.filter(f["decision_state"] == "dismissed").height if "decision_state" in f.columns else 0
    summary = (
        f"{docs.height} 份文档（新解析 {result.parsed}，沿用上次的解析 {result.reused}，无法读取 {failed}），"
        f"{f.height - dismissed} 条发现（新 {new}，已解决 {resolved}"
        + (f"；另有 {dismissed} 条已驳回，不计入" if dismissed else "")
        + f"），输出 {result.out.resolve()}"
    ) + (f"；已跳过无效的任务文件：{skipped}" if skipped else "")
    log.info("任务 %s 完成：%s", name, summary)
    return summary, result


def build_scheduler(settings: Settings) -> BaseScheduler:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    store = SQLAlchemyJobStore(url=f"sqlite:///{(settings.state_dir / 'jobs.sqlite').resolve()}")
    defaults = {"coalesce": True, "max_instances": 1, "misfire_grace_time": settings.schedule.misfire_grace_seconds}
    return BackgroundScheduler(jobstores={"default": store}, job_defaults=defaults, timezone=settings.schedule.timezone)


def register_jobs(scheduler: BaseScheduler, settings: Settings, config: str = "") -> list[str]:
    """Add (or update) every valid job of the jobs folder; jobs removed from the folder, or whose
    file is no longer valid, are removed. Invalid files are logged with their file and line."""
    jobs, invalid = load_jobs(settings.jobs_dir)
    for exc in invalid:
        log.error("任务文件无效，未排入计划：%s", exc)
    for name, job in jobs.items():
        trigger = job.schedule.trigger(settings.schedule.timezone)
        scheduler.add_job(run_job_by_name, trigger, args=[name, config], id=name, name=name, replace_existing=True)
    for existing in scheduler.get_jobs():
        if existing.id not in jobs:
            existing.remove()
    return sorted(jobs)


def next_run(scheduler: BaseScheduler, name: str) -> str:
    job = scheduler.get_job(name)
    when = job.next_run_time if job else None
    return f"{when:%Y-%m-%d %H:%M:%S}（{when.tzinfo}）" if when else "无（计划已结束）"


def _report_events(scheduler: BaseScheduler, grace: int):
    """APScheduler's events in Chinese, each with when the job runs next."""

    def on_event(event) -> None:
        name = event.job_id
        if event.code == EVENT_JOB_ERROR:
            log.error("任务 %s 运行出错：%s\n%s", name, event.exception, event.traceback or "")
        elif event.code == EVENT_JOB_MISSED:
            log.warning("任务 %s 错过了 %s 的运行（超过了 %s 秒的宽限），等下次", name, event.scheduled_run_time, grace)
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            log.warning("任务 %s 上一次运行尚未结束，本次跳过", name)
        log.info("任务 %s 下次运行：%s", name, next_run(scheduler, name))

    return on_event


def serve(config: str = "") -> None:
    """`audits schedule`: run until SIGTERM or Ctrl-C, then let a running job finish and stop."""
    settings = load_settings(Path(config) if config else None)
    # Scheduled runs read the settings file this scheduler was started with, wherever it runs.
    config = str(settings.source or "")
    # APScheduler's own messages are English; its events are reported in Chinese below instead.
    logging.getLogger("apscheduler").setLevel(logging.CRITICAL)
    with logging_to(settings.state_dir, console=True) as path:
        scheduler = build_scheduler(settings)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        scheduler.add_listener(_report_events(scheduler, settings.schedule.misfire_grace_seconds), EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        scheduler.start(paused=True)
        names = register_jobs(scheduler, settings, config)
        log.info(
            "调度器已启动：%d 个任务（%s），时区 %s，配置 %s，状态目录 %s，日志 %s",
            len(names), "、".join(names) or "无", settings.schedule.timezone, settings.source or "默认值", settings.state_dir, path,
        )
        for name in names:
            log.info("任务 %s 下次运行：%s", name, next_run(scheduler, name))
        scheduler.resume()
        stop.wait()
        log.info("收到停止信号：等正在运行的任务结束后退出")
        scheduler.shutdown(wait=True)
        log.info("调度器已停止")
