"""Settings (config/*.toml) and scheduled job definitions (jobs/*.yaml), validated on load."""

from __future__ import annotations

import csv
import glob
import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from audits.yamlio import YamlFileError, read_yaml, validate


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FetchSettings(_Strict):
    timeout_seconds: float = 20.0
    deadline_seconds: float = 300.0
    retries: int = 3
    backoff_seconds: float = 1.0
    max_bytes: int = 20_000_000
    user_agent: str = "gov-disclosure-audits/0.1"


class ScheduleSettings(_Strict):
    misfire_grace_seconds: int = 3600


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
    cluster: ClusterSettings = ClusterSettings()


def load_settings(path: Path | None = None) -> Settings:
    """`path`, else $AUDITS_CONFIG, else ./config/default.toml, else the defaults."""
    path = path or (Path(os.environ["AUDITS_CONFIG"]) if os.environ.get("AUDITS_CONFIG") else Path("config/default.toml"))
    if not path.is_file():
        return Settings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        settings = Settings.model_validate(data)
    except tomllib.TOMLDecodeError as exc:
        raise YamlFileError(path, getattr(exc, "lineno", 1) or 1, getattr(exc, "colno", 1) or 1, f"TOML 语法错误: {exc}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        raise YamlFileError(path, 1, 1, f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    base = path.parent.parent if path.parent.name == "config" else path.parent
    return settings.model_copy(
        update={"state_dir": base / settings.state_dir, "jobs_dir": base / settings.jobs_dir, "roster": str(base / settings.roster) if settings.roster else ""}
    )


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


class Schedule(_Strict):
    cron: CronFields | None = None
    interval: IntervalFields | None = None

    @model_validator(mode="after")
    def _one_trigger(self):
        if (self.cron is None) == (self.interval is None):
            raise ValueError("schedule 需要且只需要 cron 或 interval 之一")
        return self

    def trigger_args(self) -> dict:
        return (self.cron or self.interval).model_dump(exclude_none=True, exclude_defaults=self.interval is not None)


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
