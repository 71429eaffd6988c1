"""One self-contained HTML page per pipeline run, and `python -m pipeline report`.

The page, <pipeline root>/reports/<run id>/report.html, is built from what TFX already wrote
for the run (run_page_data reads it) as plain HTML with inline plots and images
(run_page_html writes it): no script, nothing fetched, so it reads the same from a laptop, an
archive or a CI artifact. This module stays light to import (the CLI imports it before
TensorFlow loads); the builders are imported when a page is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any, Optional

from pipeline import config as config_lib

if TYPE_CHECKING:
    from pipeline import report

REPORTS_DIR = "reports"
PAGE_NAME = "report.html"
EXIT_WRITTEN, EXIT_USAGE = 0, 2


# Writing


def write_run_page(pipeline_root: str, pipeline_name: str, run_id: Optional[str] = None,
                   summary: Optional["report.RunReport"] = None, profile: Optional[str] = None,
                   changed_config: Optional[dict] = None) -> str:
    """Writes the page of a run (default: the latest) and returns its path,
    <pipeline_root>/reports/<run id>/report.html. The run's own summary, when given, supplies
    the figures it already has (components' durations, metrics, verdict); raises
    run_page_data.NoRun when the root holds no such run."""
    from pipeline import run_page_data, run_page_html

    data = run_page_data.collect(pipeline_root, pipeline_name, run_id, summary, profile, changed_config)
    path = page_path(pipeline_root, data.run_id)
    write_atomically(path, run_page_html.render(data))
    return path


def write_compiled_run_page(pipeline_root: str, task_outputs: dict, summary: "report.RunReport",
                            parameters: Optional[dict] = None, changed_config: Optional[dict] = None,
                            run_id: Optional[str] = None) -> str:
    """The same page for a run of the compiled spec by kfp.local, which keeps no ML Metadata:
    from each task's output artifacts ({task: {output key: artifact with uri and metadata}}),
    the run's summary and its runtime parameters. Its run id defaults to the pipeline's name
    and the local time, as kfp.local names every run of a spec alike."""
    from pipeline import run_page_data, run_page_html

    run_id = run_id or f"{summary.run_id}-{time.strftime('%Y%m%dT%H%M%S')}"
    record = run_page_data.from_task_outputs(run_id, task_outputs, summary, parameters)
    data = run_page_data.page_data(record, summary.run_id or "compiled", summary, summary.profile, changed_config)
    path = page_path(pipeline_root, run_id)
    write_atomically(path, run_page_html.render(data))
    return path


def config_values(config: config_lib.PipelineConfig) -> dict[str, Any]:
    """A config as {`--set` key: value}."""
    values = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            values.update({f"{field.name}.{key}": sub for key, sub in dataclasses.asdict(value).items()})
        elif field.name != "profile":
            values[field.name] = value
    return values


def config_changes(config: config_lib.PipelineConfig) -> dict[str, Any]:
    """Where a config differs from its profile, by `--set` key: the `changed_config` a run
    passes to write_run_page (taken before the run fills in paths of its own)."""
    defaults = config_values(config_lib.load_profile(config.profile))
    return {key: value for key, value in config_values(config).items() if defaults.get(key) != value}


def page_path(pipeline_root: str, run_id: str) -> str:
    return os.path.join(os.path.abspath(pipeline_root), REPORTS_DIR, safe_name(run_id), PAGE_NAME)


def safe_name(run_id: str) -> str:
    """A run id as a folder name: TFX's ids are timestamps with colons."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", run_id)


def write_atomically(path: str, text: str) -> None:
    """Readers see the old page or the new one whole, never a part."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handle, temp_path = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".report-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temp_path, 0o644)
        os.replace(temp_path, path)
    except BaseException:
        if os.path.exists(temp_path):
            os.remove(temp_path)
        raise


# Command line


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "report", help="write the HTML page of a run (default: the latest)",
        description="Writes <pipeline root>/reports/<run id>/report.html from the run's artifacts and prints its "
                    "path; exit status 2 when the root holds no such run.",
    )
    parser.add_argument("--pipeline-root", metavar="DIR",
                        help="the run's pipeline root (default: the profile's, outputs/<pipeline>)")
    parser.add_argument("--run", dest="run_id", metavar="ID", help="a pipeline run id (default: the latest)")
    parser.add_argument("--profile", help="the profile the run used (default: the one whose pipeline the root holds)")
    return parser


def command_report(args: argparse.Namespace) -> int:
    from pipeline import run_page_data

    try:
        root = args.pipeline_root or config_lib.load_profile(args.profile or "demo").resolved_pipeline_root
        name = run_page_data.pipeline_name_in(root, args.profile)
        path = write_run_page(root, name, run_id=args.run_id, profile=args.profile)
    except (run_page_data.NoRun, config_lib.ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"[pipeline] wrote {path}", flush=True)
    return EXIT_WRITTEN
