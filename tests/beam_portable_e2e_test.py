"""The demo with every Beam step (ExampleGen, StatisticsGen, Transform, Evaluator) on Beam's
portable path: a local job service and an external worker pool started here
(`beam_services.running`), the pipeline's Beam steps sent there with
`--set beam_runner=portable ...`. Each step's output is compared with the session's first
in-process demo run (`demo_runs`, the same settings but for a Trainer that trains less here,
PORTABLE_TRAINER: the Trainer runs no Beam):

- ExampleGen's and Transform's records, as multisets (the order within a split may differ);
- StatisticsGen's statistics, each split's features in name order, numbers within 1e-6;
- the Evaluator's metrics for the same model within 1e-6: the two runs train different models
  (the Trainer's input order may differ), so the portable run's model is evaluated again here
  by the same Evaluator in process, on the in-process run's test split, and the two
  evaluations compared.

The run pushes a model, and no process of the services or their workers is left.
"""

import collections
import glob
import json
import os
import time

import psutil
import pytest
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx import types
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.types import artifact_utils, standard_artifacts
from tfx.types import standard_component_specs as keys
from tfx.utils import proto_utils

from components.evaluator import Evaluator, build_eval_config
from components.evaluator import executor as evaluator_executor
from conftest import FIRST_RUN_SETTINGS, run_demo
from pipeline.beam import services as beam_services
from pipeline.beam.arguments import beam_args
from pipeline.cli import exit_status
from pipeline.config.settings import apply_overrides, load_profile
from components.run_page.outcome import read_metrics

pytestmark = pytest.mark.e2e

FIRST_RUN = apply_overrides(load_profile("demo"), [value for flag, value in zip(FIRST_RUN_SETTINGS[::2],
                                                                                FIRST_RUN_SETTINGS[1::2])
                                                   if flag == "--set"])
# Two frozen-base epochs and no fine-tuning (the first in-process run's: 10 and 1); as
# tests/conftest.py's compiled run, which clears the same bar.
PORTABLE_TRAINER = ("--set", "trainer.phase1_epochs=2", "--set", "trainer.phase2_epochs=0")
TOLERANCE = 1e-6
BEAM_STEPS = ("TfdsExampleGen", "StatisticsGen", "Transform", "Evaluator")


def descendants(pids):
    found = []
    for pid in pids:
        try:
            found += psutil.Process(pid).children(recursive=True)
        except psutil.NoSuchProcess:
            pass
    return found


@pytest.fixture(scope="module")
def portable_run(tmp_path_factory):
    """(root, result, summary, services' log dir, processes left after the run, processes left
    after the services stopped)."""
    root = str(tmp_path_factory.mktemp("portable"))
    log_dir = os.path.join(root, "beam-services")
    with beam_services.running(log_dir=log_dir) as services:
        result, summary = run_demo(root, *FIRST_RUN_SETTINGS, *PORTABLE_TRAINER, *services.settings())
        time.sleep(1)  # the last step's worker ends as its job does
        after_run = descendants(services.pids())
        everything = [psutil.Process(pid) for pid in services.pids()] + after_run
    left = [process for process in everything if process.is_running()]
    return root, result, summary, log_dir, after_run, left


def first_artifact(root, component, output):
    """The artifact folder of the component's first execution under the run root."""
    base = os.path.join(root, "pipeline", component, output)
    return os.path.join(base, min((name for name in os.listdir(base) if name.isdigit()), key=int))


def records(split_dir):
    """The split's tf.Examples as a multiset (each canonically serialized)."""
    counts = collections.Counter()
    for path in sorted(glob.glob(os.path.join(split_dir, "*"))):
        compression = "GZIP" if path.endswith(".gz") else ""
        for record in tf.data.TFRecordDataset(path, compression_type=compression):
            counts[tf.train.Example.FromString(record.numpy()).SerializeToString(deterministic=True)] += 1
    return counts


def statistics(split_dir):
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    with open(os.path.join(split_dir, "FeatureStats.pb"), "rb") as file:
        stats.ParseFromString(file.read())
    datasets = json_format.MessageToDict(stats)["datasets"]
    for dataset in datasets:
        dataset["features"] = sorted(dataset["features"], key=lambda feature: json.dumps(
            feature.get("path", feature.get("name")), sort_keys=True))
    return datasets


def assert_close(left, right, where=""):
    if isinstance(left, dict):
        assert isinstance(right, dict) and left.keys() == right.keys(), where
        for key in left:
            assert_close(left[key], right[key], f"{where}.{key}")
    elif isinstance(left, list):
        assert isinstance(right, list) and len(left) == len(right), where
        for index, (a, b) in enumerate(zip(left, right)):
            assert_close(a, b, f"{where}[{index}]")
    elif isinstance(left, float) or isinstance(right, float):
        # nan where a metric is undefined (a label slice's recall), in both or in neither.
        assert left == pytest.approx(right, rel=TOLERANCE, abs=TOLERANCE, nan_ok=True), where
    else:
        assert left == right, where


def evaluate_in_process(examples_uri, model_uri, out_dir):
    """The pipeline's Evaluator on (examples, model), with the first run's gate and no served
    model, Beam in this process; returns its evaluation folder."""
    examples = standard_artifacts.Examples()
    examples.uri = examples_uri
    examples.split_names = artifact_utils.encode_split_names(["train", "eval", "test"])
    model = standard_artifacts.Model()
    model.uri = model_uri
    bar = FIRST_RUN.evaluator.accuracy_bar
    component = Evaluator(
        examples=types.Channel(type=standard_artifacts.Examples), model=types.Channel(type=standard_artifacts.Model),
        eval_config=build_eval_config(bar, FIRST_RUN.evaluator.max_accuracy_drop), accuracy_bar=bar,
        serving_dir=str(out_dir / "serving"), example_splits=["test"])
    exec_properties = {key: proto_utils.proto_to_json(value) if hasattr(value, "DESCRIPTOR") else value
                       for key, value in component.exec_properties.items() if value is not None}
    evaluation, blessing = standard_artifacts.ModelEvaluation(), standard_artifacts.ModelBlessing()
    evaluation.uri, blessing.uri = str(out_dir / "evaluation"), str(out_dir / "blessing")
    context = BaseBeamExecutor.Context(beam_pipeline_args=beam_args(FIRST_RUN), tmp_dir=str(out_dir / "tmp"),
                                       unique_id="portable-e2e")
    evaluator_executor.Executor(context).Do({keys.EXAMPLES_KEY: [examples], keys.MODEL_KEY: [model]},
                                            {keys.EVALUATION_KEY: [evaluation], keys.BLESSING_KEY: [blessing]},
                                            exec_properties)
    return evaluation.uri


def test_the_portable_run_completes_and_pushes_a_model(portable_run):
    root, result, summary, log_dir, _, _ = portable_run
    assert result.returncode == exit_status.PUSHED, result.stdout[-3000:] + result.stderr[-5000:]
    assert summary["pushed_model_dir"] and os.path.isfile(os.path.join(summary["pushed_model_dir"], "saved_model.pb"))
    assert all(info["status"] == "complete" for info in summary["components"].values()), summary["components"]


def test_every_beam_step_ran_on_the_worker_pools_workers(portable_run):
    """One SDK worker per Beam step, started by the pool for the job service at 127.0.0.1."""
    _, result, _, log_dir, _, _ = portable_run
    with open(os.path.join(log_dir, "workers.log"), errors="replace") as log:
        started = [line for line in log if line.startswith(beam_services.WORKER_STARTED)]
    assert len(started) == len(BEAM_STEPS), started
    assert all(", job service 127.0.0.1:" in line for line in started), started
    for step in BEAM_STEPS:
        assert f"[pipeline] {step} finished in" in result.stdout


def test_example_gen_writes_the_same_records(portable_run, demo_runs):
    portable_root, *_ = portable_run
    in_process_root, _ = demo_runs
    portable = first_artifact(portable_root, "TfdsExampleGen", "examples")
    in_process = first_artifact(in_process_root, "TfdsExampleGen", "examples")
    for split in ("train", "eval", "test"):
        mine, theirs = records(os.path.join(portable, f"Split-{split}")), records(os.path.join(in_process, f"Split-{split}"))
        assert sum(mine.values()) > 0 and mine == theirs, split


def test_statistics_gen_computes_the_same_statistics(portable_run, demo_runs):
    portable_root, *_ = portable_run
    in_process_root, _ = demo_runs
    portable = first_artifact(portable_root, "StatisticsGen", "statistics")
    in_process = first_artifact(in_process_root, "StatisticsGen", "statistics")
    for split in ("train", "eval", "test"):
        assert_close(statistics(os.path.join(portable, f"Split-{split}")),
                     statistics(os.path.join(in_process, f"Split-{split}")), split)


def test_transform_writes_the_same_records(portable_run, demo_runs):
    portable_root, *_ = portable_run
    in_process_root, _ = demo_runs
    portable = first_artifact(portable_root, "Transform", "transformed_examples")
    in_process = first_artifact(in_process_root, "Transform", "transformed_examples")
    for split in ("train", "eval"):
        mine, theirs = records(os.path.join(portable, f"Split-{split}")), records(os.path.join(in_process, f"Split-{split}"))
        assert sum(mine.values()) > 0 and mine == theirs, split


def test_the_evaluator_computes_the_same_metrics_for_the_same_model(portable_run, demo_runs, tmp_path):
    portable_root, *_ = portable_run
    in_process_root, _ = demo_runs
    model = first_artifact(portable_root, "Trainer", "model")
    again = evaluate_in_process(first_artifact(in_process_root, "TfdsExampleGen", "examples"), model, tmp_path)
    portable_metrics = dict(zip(("overall", "by_label"), read_metrics(
        first_artifact(portable_root, "Evaluator", "evaluation"))))
    in_process_metrics = dict(zip(("overall", "by_label"), read_metrics(again)))
    assert "binary_accuracy" in portable_metrics["overall"] and len(portable_metrics["by_label"]) == 2
    assert_close(portable_metrics, in_process_metrics)


def test_no_process_of_the_services_or_their_workers_is_left(portable_run):
    *_, after_run, left = portable_run
    assert after_run == [], "a worker outlived its Beam step (or was left a zombie)"
    assert left == [], "the services left processes behind"
