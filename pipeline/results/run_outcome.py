"""A run's outcome as the local commands read it: the RunPage step's own reading of the
artifacts (components/run_page/outcome.py), then what only the orchestrator knows, which steps
came from the cache and from which run."""

from __future__ import annotations

from components.run_page import outcome
from components.run_page.record import RunResult
from pipeline import steps


def fill(result: RunResult) -> None:
    """`result.artifacts` read as the RunPage step reads its inputs, and a cached Evaluator's
    or Pusher's verdict and push credited to the run that made them."""
    result.page_inputs = steps.page_inputs(result.artifacts)
    serving_dir = result.execution_properties.get(steps.EVALUATOR.id, {}).get("serving_dir")
    outcome.fill_outcome(result, serving_dir)
    if is_cached(result, steps.EVALUATOR.id):
        result.evaluated_in_run = result.cached_from.get(steps.EVALUATOR.id)
    if is_cached(result, steps.PUSHER.id) and result.pushed_model_dir:
        # The push was an earlier run's: this run pushed nothing.
        result.pushed_earlier, result.pushed_model_dir = result.pushed_model_dir, None
        result.pushed_in_run = result.cached_from.get(steps.PUSHER.id)
    outcome.note_candidate_served(result)


def is_cached(result: RunResult, name: str) -> bool:
    component = result.component(name)
    return component is not None and component.status == "cached"
