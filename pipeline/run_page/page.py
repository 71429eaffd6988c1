"""One self-contained HTML page per pipeline run.

The page, <pipeline root>/reports/<run id>/report.html, is built from the run's record
(pipeline/results) and what TFX already wrote for the run (run_page/data.py reads it) as
plain HTML with inline plots and images (run_page/html.py writes it): no script, nothing
fetched, so it reads the same from a laptop, an archive or a CI artifact.
"""

from __future__ import annotations

import os
import re
import tempfile
from typing import Optional

from pipeline.results import metadata as results_metadata
from pipeline.results.record import RunResult
from pipeline.run_page import data as page_data
from pipeline.run_page import html as page_html

REPORTS_DIR = "reports"
PAGE_NAME = "report.html"


def write_run_page(result: RunResult, pipeline_root: str, changed_config: Optional[dict] = None) -> str:
    """Writes the page of a run (local or compiled) and returns its path,
    <pipeline_root>/reports/<run id>/report.html."""
    path = page_path(pipeline_root, result.run_id)
    write_atomically(path, page_html.render(page_data.from_result(result, changed_config)))
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
