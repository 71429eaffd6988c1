"""The step table (pipeline/steps.py) against create_pipeline, and a step added to a copy of
the pipeline (one call in create_pipeline, one row in the table) reaching the run record, the
summary, the progress lines, the run page and the Kubeflow compile with no other edit."""

import dataclasses
import pathlib
import types

import pytest
import yaml
from tfx import v1 as tfx
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts

from pipeline import steps
from pipeline.cli import main as cli
from pipeline.config.settings import load_profile
from pipeline.pipeline import create_pipeline
from pipeline.results.task_outputs import TaskRecord, from_task_outputs
from components.run_page import html as run_page_html
from components.run_page import record
from components.run_page.page_data import PageData
from pipeline.runners import progress

PIPELINE_SOURCE = pathlib.Path(__file__).resolve().parent.parent / "pipeline" / "pipeline.py"
NEW_STEP = steps.Step("ModelCard", {"card": "ExampleAnomalies"}, cached=False)


@component
def ModelCard(model: InputArtifact[standard_artifacts.Model],  # noqa: N802 (TFX names a step by its function)
              card: OutputArtifact[standard_artifacts.ExampleAnomalies]) -> None:
    """A step between the Trainer and the Pusher: what a new step looks like to the pipeline."""


def table_problems(pipeline: tfx.dsl.Pipeline) -> list[str]:
    """Where the step table and the pipeline disagree: a step's id, or an output's key or type."""
    by_id = {node.id: node for node in pipeline.components}
    problems = [f"{step_id}: in the table, not in the pipeline" for step_id in {s.id for s in steps.STEPS} - set(by_id)]
    problems += [f"{node_id}: in the pipeline, not in the table" for node_id in set(by_id) - {s.id for s in steps.STEPS}]
    for step in steps.STEPS:
        outputs = by_id[step.id].outputs if step.id in by_id else {}
        for key, type_name in step.outputs.items():
            if key not in outputs:
                problems.append(f"{step.id}: no output {key!r}")
            elif outputs[key].type_name != type_name:
                problems.append(f"{step.id}.{key}: {outputs[key].type_name}, the table says {type_name}")
    return problems


def test_the_step_table_is_create_pipelines():
    assert table_problems(create_pipeline(load_profile("full"))) == []  # the full profile needs no archive
    assert [step.id for step in steps.STEPS] == [node.id for node in create_pipeline(load_profile("full")).components]


def test_the_run_pages_inputs_are_the_step_outputs_the_table_names():
    """The RunPage step's input channels in create_pipeline, by (producer, output key), are the
    table's PAGE_INPUTS, which the local commands use to hand the page's code a run's artifacts."""
    run_page = create_pipeline(load_profile("full")).components[-1]
    assert run_page.id == steps.RUN_PAGE.id
    wired = {key: (channel.producer_component_id, channel.output_key) for key, channel in run_page.inputs.items()}
    assert wired == dict(steps.PAGE_INPUTS)


def test_the_records_step_names_are_the_tables():
    assert (record.TRAINER, record.EVALUATOR, record.INFRA_VALIDATOR, record.PUSHER) == (
        steps.TRAINER.id, steps.EVALUATOR.id, steps.INFRA_VALIDATOR.id, steps.PUSHER.id)


def pipeline_with_a_new_step():
    """pipeline/pipeline.py with one more call in create_pipeline (and its name in the list)."""
    source = PIPELINE_SOURCE.read_text()
    source = source.replace("    pusher = Pusher(", '    model_card = ModelCard(model=trainer.outputs["model"])\n\n    pusher = Pusher(', 1)
    source = source.replace("            pusher,\n", "            model_card,\n            pusher,\n", 1)
    module = types.ModuleType("pipeline_copy")
    module.ModelCard = ModelCard  # the new step's package
    exec(compile(source, str(PIPELINE_SOURCE), "exec"), module.__dict__)  # pylint: disable=exec-used
    return module


@pytest.fixture
def new_step(monkeypatch):
    before_pusher = steps.STEPS.index(steps.PUSHER)
    monkeypatch.setattr(steps, "STEPS", (*steps.STEPS[:before_pusher], NEW_STEP, *steps.STEPS[before_pusher:]))
    return pipeline_with_a_new_step()


def test_a_new_step_reaches_the_record_the_summary_and_the_page(new_step):
    pipeline = new_step.create_pipeline(load_profile("full"))
    assert table_problems(pipeline) == []
    card = types.SimpleNamespace(uri="/runs/ModelCard/card", metadata={})
    records = {node.id: TaskRecord("complete", 1.0, float(index), {"card": card} if node.id == "ModelCard" else {})
               for index, node in enumerate(pipeline.components)}
    result = from_task_outputs("cats-vs-dogs", "run-1", records, list(records))
    assert result.output("ModelCard", "card").uri == "/runs/ModelCard/card"
    assert result.summary()["components"]["ModelCard"] == {"status": "complete", "seconds": 1.0}
    assert any(line.split()[:2] == ["ModelCard", "complete"] for line in result.render().splitlines())
    assert "<td>ModelCard</td>" in run_page_html.render(PageData(result=result))
    assert progress.started_line("ModelCard") == "[pipeline] ModelCard started (step 9 of 11)"
    del records["ModelCard"]
    assert steps.unfinished(from_task_outputs("cats-vs-dogs", "run-2", records,
                                              [n.id for n in pipeline.components]).components) == ["ModelCard"]


def test_a_new_step_that_may_be_skipped_leaves_the_run_complete(new_step, monkeypatch):
    monkeypatch.setattr(steps, "STEPS", tuple(dataclasses.replace(s, may_skip=s.id == "ModelCard") for s in steps.STEPS))
    records = {"Trainer": TaskRecord("complete", 1.0, 0.0, {})}
    assert steps.unfinished(from_task_outputs("cats-vs-dogs", "run-1", records, ["Trainer", "ModelCard"]).components) == []


def test_a_new_uncached_step_is_compiled_with_kfps_cache_off(new_step, monkeypatch, tmp_path):
    monkeypatch.setattr("pipeline.runners.kubeflow.create_pipeline", new_step.create_pipeline)
    output = tmp_path / "pipeline.yaml"
    assert cli.main(["compile-kubeflow", "--output", str(output), "--pipeline-root", "gs://test-bucket/pipelines",
                     "--image", "registry.example.com/cats-dogs-tfx:test"]) == 0
    tasks = yaml.safe_load(output.read_text())["root"]["dag"]["tasks"]
    assert tasks["ModelCard"]["cachingOptions"] == {"enableCache": False}
    assert tasks["Trainer"].get("cachingOptions", {}).get("enableCache", True) is True
