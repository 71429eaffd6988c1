"""The pipeline's steps, one row each, in create_pipeline's order: what every part of a run
needs to know about a step besides its wiring.

The run record keeps each step's `outputs` (ML Metadata's, or kfp.local's task outputs); the
Kubeflow compile turns KFP's cache off for a step that is not `cached`; a run counts a step that
did not run as unfinished unless it `may_skip`. The progress lines give a step's place in the
table; the run page and the summary list the steps the record holds, in the table's terms. `tests/steps_test.py` checks the table against create_pipeline.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Sequence


@dataclasses.dataclass(frozen=True)
class Step:
    id: str  # the component's id: its node in ML Metadata, its task in the compiled spec
    # The outputs the run record keeps: output key -> ML Metadata type name.
    outputs: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # False for a step whose outcome depends on the serving folder at run time: KFP's cache,
    # keyed on a spec compiled once, would reuse a verdict against a model no longer served.
    cached: bool = True
    # True for a step whose not running leaves the run complete.
    may_skip: bool = False


EXAMPLE_GEN = Step("TfdsExampleGen", {"examples": "Examples"})
STATISTICS_GEN = Step("StatisticsGen", {"statistics": "ExampleStatistics"})
SCHEMA_GEN = Step("SchemaGen")
EXAMPLE_VALIDATOR = Step("ExampleValidator")
TRANSFORM = Step("Transform", {"transformed_examples": "Examples"})
TRAINER = Step("Trainer", {"model": "Model", "model_run": "ModelRun"})
EVALUATOR = Step("Evaluator", {"evaluation": "ModelEvaluation", "blessing": "ModelBlessing"}, cached=False)
INFRA_VALIDATOR = Step("InfraValidator", {"blessing": "InfraBlessing"})
PUSHER = Step("Pusher", {"pushed_model": "PushedModel"}, cached=False)
# Its page names the run and the version served when it ran: never a page from the cache.
RUN_PAGE = Step("RunPage", {"page": "system.HTML", "metrics": "system.Metrics",
                            "classification_metrics": "system.ClassificationMetrics", "verdict": "system.Markdown"},
                cached=False)

STEPS: tuple[Step, ...] = (
    EXAMPLE_GEN,
    STATISTICS_GEN,
    SCHEMA_GEN,
    EXAMPLE_VALIDATOR,
    TRANSFORM,
    TRAINER,
    EVALUATOR,
    INFRA_VALIDATOR,
    PUSHER,
    RUN_PAGE,
)

# The RunPage step's inputs (components/run_page/spec.py), each the output of a step above:
# what the local commands hand the page's code when they render a run's page again.
PAGE_INPUTS: Mapping[str, tuple[str, str]] = {
    "examples": (EXAMPLE_GEN.id, "examples"),
    "statistics": (STATISTICS_GEN.id, "statistics"),
    "transformed_examples": (TRANSFORM.id, "transformed_examples"),
    "model": (TRAINER.id, "model"),
    "model_run": (TRAINER.id, "model_run"),
    "evaluation": (EVALUATOR.id, "evaluation"),
    "blessing": (EVALUATOR.id, "blessing"),
    "infra_blessing": (INFRA_VALIDATOR.id, "blessing"),
    "pushed_model": (PUSHER.id, "pushed_model"),
}


def result_outputs() -> dict[tuple[str, str], str]:
    """The outputs a run's record keeps, by (step id, output key), with their ML Metadata types."""
    return {(step.id, key): type_name for step in STEPS for key, type_name in step.outputs.items()}


def page_inputs(artifacts: Mapping[tuple[str, str], Any]) -> dict[str, Any]:
    """A record's outputs (by step id and output key) as the RunPage step's inputs."""
    return {name: artifacts[output] for name, output in PAGE_INPUTS.items() if output in artifacts}


def unfinished(components: Sequence[Any]) -> list[str]:
    """The steps of a record (ComponentResults) that failed, or never ran and may not be skipped."""
    return [component.name for component in components
            if component.status == "failed" or (component.status == "not run" and not may_skip(component.name))]


def uncached() -> tuple[str, ...]:
    return tuple(step.id for step in STEPS if not step.cached)


def may_skip(step_id: str) -> bool:
    return any(step.id == step_id and step.may_skip for step in STEPS)


def position(step_id: str) -> Optional[int]:
    """The step's place in the table, from 1; None for a step the table lacks."""
    return next((number for number, step in enumerate(STEPS, start=1) if step.id == step_id), None)
