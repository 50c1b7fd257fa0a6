"""Settings (config/*.toml) and scheduled job definitions (jobs/*.yaml), validated on load."""

from __future__ import annotations

import csv
import glob
import os
import tomllib
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from audits.yamlio import YamlFileError, read_yaml, validate


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FetchSettings(_Strict):
    timeout_seconds: float = 20.0
    deadline_seconds: float = 300.0
    retries: int = 3
    backoff_seconds: float = 1.0
    max_bytes: int = 20_000_000
    connections: int = Field(8, ge=1)
    connections_per_host: int = Field(4, ge=1)
    user_agent: str = "gov-disclosure-audits/0.1"


class ScheduleSettings(_Strict):
    misfire_grace_seconds: int = 3600
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"未知的时区“{value}”（应为 IANA 时区名，如 Asia/Shanghai）") from None
        return value


class HistorySettings(_Strict):
    keep_runs: int = 0


class LimitSettings(_Strict):
    seconds_per_document: float = 300.0
    memory_mb_per_worker: int = 4096

    def budget(self):
        from audits.workers import Budget

        return Budget(self.seconds_per_document, self.memory_mb_per_worker)


class ClusterSettings(_Strict):
    address: str = ""


class Settings(_Strict):
    state_dir: Path = Path(".state")
    jobs_dir: Path = Path("jobs")
    roster: str = ""
    fetch: FetchSettings = FetchSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    limits: LimitSettings = LimitSettings()
    history: HistorySettings = HistorySettings()
    cluster: ClusterSettings = ClusterSettings()
    source: Path | None = Field(default=None, exclude=True)  # the settings file these came from, None: defaults


class SettingsNotFound(LookupError):
    """A settings file named by --config or $AUDITS_CONFIG that does not exist."""


def settings_file(path: Path | None = None) -> Path | None:
    """The settings file in force: `path` (--config), else $AUDITS_CONFIG, else config/default.toml in
    the current folder or the nearest folder above it (as git finds its repository), so that a
    command typed in any folder of the installation finds the same state as the scheduler. None when
    there is none: the defaults then apply, relative to the current folder."""
    if path is None and os.environ.get("AUDITS_CONFIG"):
        path = Path(os.environ["AUDITS_CONFIG"])
    if path is not None:
        if not path.is_file():
            raise SettingsNotFound(f"找不到配置文件 {path}")
        return path.resolve()
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / "config" / "default.toml").is_file():
            return folder / "config" / "default.toml"
    return None


def load_settings(path: Path | None = None) -> Settings:
    """The settings of `settings_file(path)`, their paths made absolute (relative ones are taken from
    the folder that holds config/, or from the settings file's own folder)."""
    path = settings_file(path)
    if path is None:
        settings, base = Settings(), Path.cwd()
    else:
        try:
            settings = Settings.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
        except tomllib.TOMLDecodeError as exc:
            raise YamlFileError(path, getattr(exc, "lineno", 1) or 1, getattr(exc, "colno", 1) or 1, f"TOML 语法错误: {exc}") from None
        except ValidationError as exc:
            err = exc.errors()[0]
            raise YamlFileError(path, 1, 1, f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from None
        base = path.parent.parent if path.parent.name == "config" else path.parent
    return settings.model_copy(update={
        "state_dir": (base / settings.state_dir).resolve(),
        "jobs_dir": (base / settings.jobs_dir).resolve(),
        "roster": str(base / settings.roster) if settings.roster else "",
        "source": path,
    })


class Sources(_Strict):
    paths: list[str] = Field(default_factory=list)
    manifest: str = ""


class CronFields(_Strict):
    """APScheduler's cron fields (https://apscheduler.readthedocs.io, CronTrigger), seconds allowed."""

    year: str | int | None = None
    month: str | int | None = None
    day: str | int | None = None
    week: str | int | None = None
    day_of_week: str | int | None = None
    hour: str | int | None = None
    minute: str | int | None = None
    second: str | int | None = None
    start_date: str | None = None
    end_date: str | None = None
    timezone: str | None = None


class IntervalFields(_Strict):
    weeks: float = 0
    days: float = 0
    hours: float = 0
    minutes: float = 0
    seconds: float = 0


_WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


def _weekday(text: str) -> int:
    if text in _WEEKDAYS:
        return _WEEKDAYS.index(text)
    if text.isdigit() and int(text) <= 7:
        return int(text)
    raise ValueError(f"星期“{text}”无效（应为 0–7 或 sun–sat）")


def crontab_weekdays(field: str) -> str:
    """A crontab day-of-week field (0 and 7 are Sunday) as APScheduler 3's day names. APScheduler 3
    counts its numbers from Monday, so that "0 6 * * 1" handed to it as is would fire on Tuesdays
    (its CronTrigger.from_crontab documents the mismatch, fixed only in 4.x)."""
    if field == "*":
        return field
    days: set[int] = set()
    for item in field.lower().split(","):
        span, _, step = item.partition("/")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            first, last = (_weekday(x) for x in span.split("-", 1))
        else:
            first = _weekday(span)
            last = 7 if step else first  # "1/2": from Monday on, every other day
        if last < first or (step and not step.isdigit()):
            raise ValueError(f"星期字段“{field}”无效")
        days.update(d % 7 for d in range(first, last + 1, int(step or 1)))
    return ",".join(_WEEKDAYS[d] for d in sorted(days))


def crontab_trigger(expr: str, timezone: str):
    """An APScheduler trigger for a five-field crontab line (minute hour day month weekday)."""
    from apscheduler.triggers.cron import CronTrigger

    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"crontab 表达式“{expr}”应有 5 个字段（分 时 日 月 星期），如 \"0 6 * * 1\"")
    if fields[2] != "*" and fields[4] != "*":
        # crontab fires when either matches, APScheduler only when both do
        raise ValueError(f"crontab 表达式“{expr}”同时限定了日期和星期，两种写法含义不同；请改用字段写法（cron: {{day: ..., day_of_week: ...}}）")
    minute, hour, day, month, weekday = fields
    try:
        return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=crontab_weekdays(weekday), timezone=timezone)
    except ValueError as exc:
        raise ValueError(f"crontab 表达式“{expr}”无效（{exc}）") from None


class Schedule(_Strict):
    cron: CronFields | str | None = None  # the fields, or a crontab line: "0 6 * * 1"
    interval: IntervalFields | None = None

    @model_validator(mode="after")
    def _one_trigger(self):
        if (self.cron is None) == (self.interval is None):
            raise ValueError("schedule 需要且只需要 cron 或 interval 之一")
        if isinstance(self.cron, str):
            crontab_trigger(self.cron, "UTC")  # refused here, with the job file's line, not when scheduled
        return self

    def trigger(self, timezone: str):
        """The APScheduler trigger, in `timezone` unless the job names its own (cron `timezone`)."""
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        if isinstance(self.cron, str):
            return crontab_trigger(self.cron, timezone)
        if self.cron is not None:
            return CronTrigger(**({"timezone": timezone} | self.cron.model_dump(exclude_none=True)))
        return IntervalTrigger(**self.interval.model_dump(exclude_defaults=True), timezone=timezone)


class Job(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    description: str = ""
    sources: Sources
    rules: str = ""
    out: str = ""
    schedule: Schedule
    folder: Path = Path(".")  # the job file's folder; relative paths are resolved against it

    def path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else self.folder / p

    def local_inputs(self) -> list[Path]:
        """Files and folders named by `sources.paths` (globs expanded, in order)."""
        found: list[Path] = []
        for pattern in self.sources.paths:
            full = str(self.path(pattern))
            matches = sorted(glob.glob(full, recursive=True)) if glob.has_magic(full) else [full]
            found.extend(Path(m) for m in matches)
        return found


def load_job(path: Path) -> Job:
    job = validate(path, read_yaml(path), Job)
    return job.model_copy(update={"folder": path.resolve().parent})


def load_jobs(folder: Path) -> tuple[dict[str, Job], list[YamlFileError]]:
    """The folder's valid jobs by name, and the files that are not valid (each error names its file
    and line): one bad file must not stop every other job."""
    jobs: dict[str, Job] = {}
    invalid: list[YamlFileError] = []
    for path in sorted(folder.glob("*.y*ml")):
        try:
            job = load_job(path)
            if job.name in jobs:
                raise YamlFileError(path, 1, 1, f"任务名 {job.name} 重复（已由另一个文件定义）")
        except YamlFileError as exc:
            invalid.append(exc)
            continue
        jobs[job.name] = job
    return jobs, invalid


MANIFEST_COLUMNS = ("agency", "region", "agency_kind", "report_year", "url")


def read_manifest(path: Path) -> list[dict]:
    """Rows of a manifest CSV (UTF-8, header row), each with `_line`, its line in the file; a missing
    required column is a usage error."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise YamlFileError(path, 1, 1, f"清单缺少列: {', '.join(missing)}")
            rows = []
            for row in reader:
                # Cells beyond the header (key None) are ignored; short rows read as empty cells.
                rows.append({k: (v or "").strip() for k, v in row.items() if k is not None} | {"_line": reader.line_num})
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise YamlFileError(path, 1, 1, f"无法读取清单: {exc}") from None
