"""APScheduler wiring only: jobs/*.yaml → triggers that call `run_job_by_name`.

The job store is SQLite in the state folder, so scheduled jobs survive a restart. Every job runs
with coalesce, one instance at a time, and the configured misfire grace. SIGTERM stops cleanly.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from audits.jobs.config import Job, Settings, load_jobs, load_settings
from audits.yamlio import YamlFileError

log = logging.getLogger("audits.schedule")


def run_job_by_name(name: str, config: str = "") -> str:
    """What the scheduler calls (an importable function with simple arguments, as the job store needs).

    A run that finds the job already running is skipped with a warning (the lock decides); one whose
    job or rule files have become invalid is logged, file and line named, and the scheduler goes on.
    """
    from audits.jobs.history import JobBusy

    try:
        return run_job_once(name, config)
    except JobBusy as exc:
        log.warning("%s", exc)
        return str(exc)
    except (YamlFileError, LookupError) as exc:
        log.error("任务 %s 未能运行：%s", name, exc)
        return f"任务 {name} 未能运行：{exc}"


def run_job_once(name: str, config: str = "", cluster: str = "") -> str:
    """`audits run --job NAME`: like the scheduler's call, but a busy job raises `JobBusy`;
    `cluster` overrides the settings' `[cluster] address`."""
    from audits.jobs.run import run_job

    settings = load_settings(Path(config) if config else None)
    if cluster:
        settings = settings.model_copy(update={"cluster": settings.cluster.model_copy(update={"address": cluster})})
    jobs, invalid = load_jobs(settings.jobs_dir)
    skipped = "；".join(str(exc) for exc in invalid)
    if name not in jobs:
        raise LookupError(f"没有名为 {name} 的有效任务（{settings.jobs_dir}）" + (f"；无效的任务文件：{skipped}" if skipped else ""))
    result = run_job(jobs[name], settings)
    summary = (
        f"{result.frames.documents.height} 份文档（新解析 {result.parsed}，沿用 {result.reused}），"
        f"{result.findings.height} 条发现，输出 {result.out}"
    ) + (f"；已跳过无效的任务文件：{skipped}" if skipped else "")
    log.info("job %s: %s", name, summary)
    return summary


def trigger(job: Job):
    kind = CronTrigger if job.schedule.cron is not None else IntervalTrigger
    return kind(**job.schedule.trigger_args())


def build_scheduler(settings: Settings) -> BaseScheduler:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    store = SQLAlchemyJobStore(url=f"sqlite:///{(settings.state_dir / 'jobs.sqlite').resolve()}")
    defaults = {"coalesce": True, "max_instances": 1, "misfire_grace_time": settings.schedule.misfire_grace_seconds}
    return BackgroundScheduler(jobstores={"default": store}, job_defaults=defaults)


def register_jobs(scheduler: BaseScheduler, settings: Settings, config: str = "") -> list[str]:
    """Add (or update) every valid job of the jobs folder; jobs removed from the folder, or whose
    file is no longer valid, are removed. Invalid files are logged with their file and line."""
    jobs, invalid = load_jobs(settings.jobs_dir)
    for exc in invalid:
        log.error("任务文件无效，未排入计划：%s", exc)
    for name, job in jobs.items():
        scheduler.add_job(run_job_by_name, trigger(job), args=[name, config], id=name, name=name, replace_existing=True)
    for existing in scheduler.get_jobs():
        if existing.id not in jobs:
            existing.remove()
    return sorted(jobs)


def serve(config: str = "") -> None:
    """`audits schedule`: run until SIGTERM or Ctrl-C, then let a running job finish and stop."""
    settings = load_settings(Path(config) if config else None)
    scheduler = build_scheduler(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    scheduler.start(paused=True)
    names = register_jobs(scheduler, settings, config)
    log.info("scheduled jobs: %s", ", ".join(names))
    scheduler.resume()
    stop.wait()
    log.info("stopping: waiting for running jobs to finish")
    scheduler.shutdown(wait=True)
