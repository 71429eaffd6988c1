"""The local commands' page of a run, <pipeline root>/reports/<run id>/report.html.

The RunPage step (components/run_page) writes a run's page from its inputs alone; the local
commands write it again with the same code (page_data.py reads the artifacts, html.py writes
plain HTML with inline plots and images: no script, nothing fetched) from the run's record
(pipeline/results), which adds what only the orchestrator knows: each step's status and time,
and what came from the cache.
"""

from __future__ import annotations

import os
import re
from typing import Any, Optional

from components.run_page import html as page_html
from components.run_page import page_data
from components.run_page.files import write_atomically
from components.run_page.record import RunResult
from pipeline.results import metadata as results_metadata
from pipeline.run_page import config_changes

REPORTS_DIR = "reports"
PAGE_NAME = "report.html"


def write_run_page(result: RunResult, pipeline_root: str,
                   changes: Optional[dict[str, tuple[Any, Any]]] = None) -> str:
    """Writes the page of a run (local or compiled) and returns its path,
    <pipeline_root>/reports/<run id>/report.html: the RunPage step's page with what the
    orchestrator knows besides (each step's status and time, what came from the cache).
    `changes` (config_changes.py) are the caller's; by default those the executions recorded."""
    if changes is None:
        changes = config_changes.of_record(result.execution_properties, result.profile)
    path = page_path(pipeline_root, result.run_id)
    write_atomically(path, page_html.render(page_data.from_result(result, changes)))
    return path


def write_recorded_run_page(pipeline_root: str, pipeline_name: str, profile: str, run_id: Optional[str] = None) -> str:
    """The page of a local run (default: the latest) from ML Metadata alone; raises
    results.metadata.NoRun when the root holds no such run."""
    result = results_metadata.from_metadata(pipeline_root, pipeline_name, profile, run_id)
    return write_run_page(result, pipeline_root)


def page_path(pipeline_root: str, run_id: str) -> str:
    return os.path.join(os.path.abspath(pipeline_root), REPORTS_DIR, safe_name(run_id), PAGE_NAME)


def safe_name(run_id: str) -> str:
    """A run id as a folder name: TFX's ids are timestamps with colons."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", run_id)
