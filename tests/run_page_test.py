"""The run page (pipeline/run_page): built from constructed data, and the page of a real
demo run opened in headless Chromium (Debian's package, installed by `make setup`).

The browser test opens the page of the session's first demo run (tests/conftest.py, in a
temporary root) and keeps a copy of the page with Chromium's screenshot, at
outputs/run-page-test/pipeline/reports/<run id>/report.png (git-ignored; replaced on every
run), for a person to look at. The page the pipeline's own RunPage step wrote for that run
(its `page` output, found through ML Metadata) is opened there too, and compared with the
local commands' page section by section; the third demo run (not blessed) shows the step's
page and Markdown verdict of a run that pushed nothing.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from ml_metadata.proto import metadata_store_pb2
from PIL import Image
from tensorflow.core.util import event_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2

from components import features
from pipeline.cli import commands, exit_status
from pipeline.cli import main as cli
from pipeline.config import settings
from components.config import REPO_ROOT
from pipeline.config.settings import apply_overrides, load_profile
from pipeline import steps
from components.run_page import outcome as evaluation
from pipeline.results import metadata as results_metadata
from components.run_page.record import ComponentResult, RunResult
from components.run_page import page_data as run_page_data
from components.run_page import html as run_page_html
from pipeline.run_page import config_changes
from pipeline.run_page import page as run_page
from components.run_page import classification, files
from support.records import compiled_twin

DEMO = load_profile("demo")
GOLDEN_JPEG = os.path.join(os.path.dirname(__file__), "golden", "tiny.jpg")
SECTION_IDS = [key for key, _ in run_page_html.SECTIONS]
CHROMIUM = shutil.which("chromium")
PIPELINE_ORDER = [step.id for step in steps.STEPS]
DEMO_ROOT = os.path.join(REPO_ROOT, "outputs", "run-page-test")
SCREENSHOT_WIDTH, MAX_SCREENSHOT_HEIGHT = 1200, 16000
# Appended to a copy of the page for the browser check only: once everything has loaded, it
# writes what Chromium rendered (images' natural sizes, sections' text, metric cells) into
# the DOM that --dump-dom prints. The page itself has no script.
PROBE = """<script>
addEventListener("load", function () {
  var all = function (selector) { return Array.prototype.slice.call(document.querySelectorAll(selector)); };
  var result = {
    images: all("img").map(function (i) {
      return {alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight};
    }),
    sections: all("section").map(function (s) {
      return {id: s.id, heading: s.querySelector("h2").innerText, text: s.innerText};
    }),
    metrics: all("td[data-metric]").map(function (td) {
      return {name: td.dataset.metric, value: td.dataset.value, text: td.innerText};
    }),
    // every fetch the page made (data: URIs are not fetches), failed ones included
    resources: performance.getEntriesByType("resource").map(function (r) { return r.name; }),
    height: document.documentElement.scrollHeight
  };
  var out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>
"""


# Page building on constructed data


def png(width=8, height=6, colour=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


RESULT_FIELDS = {field.name for field in dataclasses.fields(RunResult)}


def constructed_page(**changes) -> run_page_data.PageData:
    """A page's data; `changes` to the run's record or to what the page read besides."""
    history = {"epoch": [1, 2, 3], "phase": [1, 1, 2], "loss": [0.7, 0.5, 0.4], "val_loss": [0.6, 0.55, 0.5],
               "binary_accuracy": [0.6, 0.7, 0.8], "val_binary_accuracy": [0.62, 0.66, 0.75]}
    result = RunResult(
        pipeline_name="cats-vs-dogs-demo", run_id="2026-01-01T00:00:00.000001", profile="demo",
        components=[ComponentResult("TfdsExampleGen", "cached", 0.1, 0.0),
                    ComponentResult("Trainer", "complete", 12.5, 0.2),
                    ComponentResult("Pusher", "complete", 0.1, 12.8)],
        wall_seconds=13.0,
        metrics={"binary_accuracy": 0.75, "auc": 0.875, "example_count": 4.0},
        metrics_by_label={"0": {"binary_accuracy": 0.5, "example_count": 2.0},
                          "1": {"binary_accuracy": 1.0, "example_count": 2.0}},
        blessed=True, blessing_reason="passed the gate", baseline_model="/srv/models/cats_vs_dogs/1",
        pushed_model_dir="/srv/models/cats_vs_dogs/2",
    )
    result = dataclasses.replace(result, **{k: v for k, v in changes.items() if k in RESULT_FIELDS})
    data = run_page_data.PageData(
        result=result, config_changes={"trainer.phase1_epochs": (3, 2)},
        split_sizes={"train": 10, "test": 4},
        split_counts={"train": {"cat": 6, "dog": 4}, "test": {"cat": 2, "dog": 2}},
        skipped_files="3 files skipped that are not decodable images.",
        samples=[(png(), "cat"), (png(colour=(0, 0, 200)), "dog")],
        history=history, epoch_seconds={1: 4.0, 2: 1.5, 3: 6.25},
        baseline_metrics={"binary_accuracy": 0.5}, metric_changes={"binary_accuracy": 0.25},
        accuracy_bar=0.7, max_accuracy_drop=0.0,
        test_labels=[0, 0, 1, 1], test_probabilities=[0.2, 0.9, 0.8, 0.7], test_split_size=4,
        errors=[run_page_data.WrongPrediction(run_page_data.thumbnail(open(GOLDEN_JPEG, "rb").read()),
                                              "cat", "dog", 0.9, "PetImages/Cat/<1>.jpg")],
        num_wrong=1,
    )
    return dataclasses.replace(data, **{k: v for k, v in changes.items() if k not in RESULT_FIELDS})


def images_of(page: str) -> list[Image.Image]:
    sources = re.findall(r'<img src="([^"]*)"', page)
    assert all(source.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")) for source in sources)
    return [Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))) for source in sources]


def section_text(page: str, key: str) -> str:
    match = re.search(rf'<section id="{key}">(.*?)</section>', page, re.S)
    assert match, f"no section {key}"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def test_page_has_every_section_in_order_and_no_script_or_outside_reference():
    page = run_page_html.render(constructed_page())
    assert re.findall(r'<section id="([^"]+)">', page) == SECTION_IDS
    assert "<script" not in page and "<link" not in page and "url(" not in page
    references = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert references and all(ref.startswith(("data:", "#")) for ref in references)


def test_every_image_is_inline_and_decodes_to_a_picture():
    images = images_of(run_page_html.render(constructed_page()))
    # timeline, curves, ROC, two samples, one error
    assert len(images) == 6
    assert all(image.width > 0 and image.height > 0 for image in images)


def test_metrics_are_shown_rounded_and_kept_exact():
    metrics = {"binary_accuracy": 0.8444444444444444, "example_count": 90.0}
    page = run_page_html.render(constructed_page(metrics=metrics))
    assert '<td class="number" data-metric="binary_accuracy" data-value="0.8444444444444444">0.8444</td>' in page
    assert 'data-metric="example_count" data-value="90.0">90</td>' in page
    assert 'data-metric="binary_accuracy@cat" data-value="0.5">0.5000</td>' in page


def test_sections_say_what_the_run_did():
    page = run_page_html.render(constructed_page())
    assert "trainer.phase1_epochs" in section_text(page, "run") and "cached" in section_text(page, "run")
    assert "3 files skipped" in section_text(page, "data")
    training = section_text(page, "training")
    assert "phase 1 (frozen base, new head): 2 epochs, 2.8 s per epoch" in training
    assert "phase 2 (fine-tuning): 1 epochs, 6.2 s per epoch" in training
    evaluation = section_text(page, "evaluation")
    assert "Accuracy bar 0.7: 0.7500 passes" in evaluation and "+0.2500" in evaluation
    errors = section_text(page, "errors")
    assert "1 of 4 test images" in errors and "PetImages/Cat/<1>.jpg" in errors  # escaped in the HTML
    verdict = section_text(page, "verdict")
    assert "Blessed" in verdict and "Pushed version 2" in verdict
    assert "--model_base_path=/srv/models/cats_vs_dogs" in verdict and "MODEL_NAME=cats_vs_dogs" in verdict


def test_confusion_matrix_comes_from_the_per_label_accuracy():
    page = run_page_html.render(constructed_page(metrics_by_label={
        "0": {"binary_accuracy": 0.75, "example_count": 40.0}, "1": {"binary_accuracy": 0.9, "example_count": 50.0}}))
    table = re.search(r"<h3>Confusion matrix</h3>\s*<table>(.*?)</table>", page, re.S).group(1)
    cells = [int(v) for v in re.findall(r'data-value="(\d+)"', table)]
    assert cells == [30, 10, 5, 45]  # cat row: 30 right, 10 taken for dogs; dog row: 5 taken for cats, 45 right


def test_a_run_without_training_or_evaluation_still_has_every_section():
    data = constructed_page(history=None, epoch_seconds={}, metrics={}, metrics_by_label={}, baseline_metrics={},
                            metric_changes={}, test_labels=[], test_probabilities=[], errors=[], num_wrong=0,
                            samples=[], blessed=False, blessing_reason="the Evaluator did not run",
                            pushed_model_dir=None, baseline_model=None)
    page = run_page_html.render(data)
    assert re.findall(r'<section id="([^"]+)">', page) == SECTION_IDS
    assert "No training history" in page and "No evaluation" in page and "Not blessed" in page
    assert len(images_of(page)) == 1  # the timeline


def test_roc_curve_of_a_perfect_ranking_goes_through_the_top_left_corner():
    fpr, tpr, _ = classification.roc_curve([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8])
    assert list(zip(fpr, tpr)) == [(0, 0), (0, 0.5), (0, 1), (0.5, 1), (1, 1)]


def write_events(path, events):
    with tf.io.TFRecordWriter(path) as writer:
        for event in events:
            writer.write(event.SerializeToString())


def summary_event(wall_time, tag, step=0):
    return event_pb2.Event(wall_time=wall_time, step=step, summary={"value": [{"tag": tag}]})


def test_epoch_seconds_come_from_the_tensorboard_logs_of_both_fits(tmp_path):
    train = tmp_path / "train"
    train.mkdir()
    write_events(str(train / "events.out.tfevents.100.host.1.v2"), [
        event_pb2.Event(wall_time=100.0, file_version="brain.Event:2"), summary_event(100.5, "keras"),
        summary_event(104.5, "epoch_loss", 0), summary_event(104.5, "epoch_binary_accuracy", 0),
        summary_event(106.0, "epoch_loss", 1)])
    write_events(str(train / "events.out.tfevents.107.host.2.v2"), [
        event_pb2.Event(wall_time=107.0, file_version="brain.Event:2"), summary_event(107.25, "keras"),
        summary_event(117.25, "epoch_loss", 2)])
    assert run_page_data.epoch_seconds(str(tmp_path)) == {1: 4.0, 2: 1.5, 3: 10.0}


def test_label_counts_come_from_the_statistics_mean(tmp_path):
    statistics = statistics_pb2.DatasetFeatureStatisticsList()
    feature = statistics.datasets.add(num_examples=90).features.add()
    feature.path.step.append(features.LABEL_KEY)
    feature.num_stats.mean = 52 / 90
    feature.num_stats.common_stats.num_non_missing = 90
    (tmp_path / "Split-test").mkdir()
    (tmp_path / "Split-test" / "FeatureStats.pb").write_bytes(statistics.SerializeToString())
    assert run_page_data.label_counts(str(tmp_path), "test", ("cat", "dog")) == {"cat": 38, "dog": 52}
    assert run_page_data.label_counts(str(tmp_path), "train", ("cat", "dog")) == {}


def test_transformed_samples_are_the_first_training_images(tmp_path):
    path = str(tmp_path / "transformed")
    with tf.io.TFRecordWriter(path) as writer:
        for label in (1, 0, 1):
            pixels = np.full((4, 4, 3), 60 * label, np.uint8).tobytes()
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                features.TRANSFORMED_IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[pixels])),
                features.TRANSFORMED_LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
            })).SerializeToString())
    samples = run_page_data.transformed_samples([path], ("cat", "dog"), count=2)
    assert [label for _, label in samples] == ["dog", "cat"]
    assert Image.open(io.BytesIO(samples[0][0])).size == (4, 4)


def test_changed_config_is_what_the_executions_recorded_differently_from_the_profile():
    """Recorded values equal to the profile's (a float a rounding away, the same path spelled
    differently) are not changes; each change is shown beside the profile's value."""
    recorded = {
        "Trainer": {"custom_config": json.dumps({"seed": 7}), "phase1_epochs": DEMO.trainer.phase1_epochs,
                    "phase1_learning_rate": DEMO.trainer.phase1_learning_rate * (1 + 1e-12)},
        "Evaluator": {"accuracy_bar": 0.6},
        "TfdsExampleGen": {"archive": os.path.join(os.path.dirname(DEMO.data.archive), ".",
                                                   os.path.basename(DEMO.data.archive))},
    }
    assert config_changes.of_record(recorded, "demo") == {"trainer.seed": (DEMO.trainer.seed, 7),
                                                          "evaluator.accuracy_bar": (DEMO.evaluator.accuracy_bar, 0.6)}
    assert config_changes.of_record(recorded, "no-such-profile") == {}


def test_config_changes_are_the_fields_a_run_changed_from_its_profile():
    config = apply_overrides(load_profile("demo"), ["trainer.seed=7", "evaluator.accuracy_bar=0.6"])
    config.pipeline_root = "/runs/demo"
    assert settings.changes_from_profile(config) == {"trainer.seed": 7, "evaluator.accuracy_bar": 0.6,
                                                     "pipeline_root": "/runs/demo"}
    assert settings.changes_from_profile(load_profile("full")) == {}


def test_allowed_accuracy_drop_is_read_from_the_evaluators_eval_config():
    from google.protobuf import json_format

    from components.evaluator.eval_config import build_eval_config

    eval_config = json_format.MessageToJson(build_eval_config(0.7, 0.05), preserving_proto_field_name=True)
    assert evaluation.max_accuracy_drop(eval_config) == 0.05
    assert evaluation.max_accuracy_drop(None) is None


def test_page_is_written_whole_under_the_runs_folder(tmp_path):
    path = run_page.page_path(str(tmp_path), "2026-12-03T14:16:03.181309")
    assert path == str(tmp_path / "reports" / "2026-12-03T14-16-03.181309" / "report.html")
    files.write_atomically(path, "first")
    files.write_atomically(path, "second")
    assert open(path).read() == "second" and os.listdir(os.path.dirname(path)) == ["report.html"]


def report_args(*argv):
    return cli.build_parser().parse_args(["report", *argv])


def test_the_cli_and_its_commands_load_before_tensorflow():
    """The console filters must be set before TensorFlow loads, and `predict` never needs it."""
    check = ("import sys, pipeline.cli.main, pipeline.cli.commands; "
             "sys.exit('tensorflow' in sys.modules or 'matplotlib' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", check], timeout=60).returncode == 0


def test_report_on_a_root_without_runs_says_so_and_exits_2(tmp_path, capsys):
    assert commands.report(report_args("--pipeline-root", str(tmp_path))) == exit_status.USAGE
    assert "no ML Metadata at" in capsys.readouterr().err


# The page of a real demo run, in Chromium


@pytest.fixture(scope="module")
def demo_run(demo_runs):
    """The session's first demo run (tests/conftest.py), which set an accuracy bar other than
    the profile's, a config change to show: (pipeline root, summary)."""
    root, [(_, summary), *_] = demo_runs
    return os.path.join(root, "pipeline"), summary


@pytest.fixture(scope="module")
def demo_page(demo_run):
    """The page the run wrote, named in its summary; rewritten here from the run's record with
    the run's own measurements, as the run writes it, so that the test checks this code
    whatever the run did."""
    root, summary = demo_run
    result = results_metadata.from_metadata(
        root, DEMO.pipeline_name, "demo", run_id=summary["run_id"],
        component_seconds={name: info["seconds"] for name, info in summary["components"].items()},
        order=PIPELINE_ORDER, wall_seconds=summary["wall_seconds"])
    path = run_page.write_run_page(result, root, changes={"evaluator.accuracy_bar": (DEMO.evaluator.accuracy_bar, 0.6)})
    return (path,)


def chromium(profile_dir, *args) -> subprocess.CompletedProcess:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
               "--no-first-run", f"--user-data-dir={profile_dir}", "--host-resolver-rules=MAP * ~NOTFOUND", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def rendered(page_path, tmp_path) -> dict:
    """What Chromium made of the page: PROBE's findings from the dumped DOM."""
    with open(page_path, encoding="utf-8") as f:
        probed = f.read().replace("</body>", PROBE + "</body>")
    probe_path = tmp_path / "probe.html"
    probe_path.write_text(probed, encoding="utf-8")
    dom = chromium(tmp_path / "profile", f"--window-size={SCREENSHOT_WIDTH},800", "--virtual-time-budget=20000",
                   "--dump-dom", probe_path.as_uri()).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, "the probe did not run: " + dom[-2000:]
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.e2e
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make setup installs it)")
def test_demo_runs_page_in_chromium_shows_every_section_every_image_and_the_summarys_figures(
        demo_run, demo_page, tmp_path):
    root, summary = demo_run
    page_path, *_ = demo_page
    assert page_path == run_page.page_path(root, summary["run_id"])
    assert summary["run_page"] == page_path  # the run itself wrote the page and named it in its summary
    found = rendered(page_path, tmp_path)

    assert [s["id"] for s in found["sections"]] == SECTION_IDS
    assert [s["heading"] for s in found["sections"]] == [heading for _, heading in run_page_html.SECTIONS]
    text = {s["id"]: s["text"] for s in found["sections"]}

    # every image loaded: at least the timeline, the curves, the ROC curve and the samples
    assert len(found["images"]) >= 3 + run_page_data.NUM_SAMPLES
    assert [i for i in found["images"] if not (i["complete"] and i["width"] > 0 and i["height"] > 0)] == []

    # the metrics are the summary's, to the last digit
    shown = {m["name"]: m for m in found["metrics"]}
    for name, value in summary["metrics"].items():
        assert float(shown[name]["value"]) == value and shown[name]["text"] == run_page_html._fmt(value), name
    for label, values in summary["metrics_by_label"].items():
        cell = shown[f"binary_accuracy@{features.LABEL_NAMES[int(label)]}"]
        assert float(cell["value"]) == values["binary_accuracy"]

    assert summary["run_id"] in text["run"] and "evaluator.accuracy_bar" in text["run"]
    rows = [line.split("\t") for line in text["run"].splitlines() if line.split("\t")[0] in PIPELINE_ORDER]
    assert [row[0] for row in rows] == PIPELINE_ORDER
    ran = {"complete": "ran"}
    assert {row[0]: row[1] for row in rows} == {
        name: ran.get(info["status"], info["status"]) for name, info in summary["components"].items()}
    assert all(split in text["data"] for split in ("train", "eval", "test")) and "corrupt files skipped" in text["data"]
    assert "phase 2 (fine-tuning)" in text["training"] and "s per epoch" in text["training"]
    assert "Accuracy bar 0.6" in text["evaluation"] and "Confusion matrix" in text["evaluation"]
    assert "test images" in text["errors"] and "misclassified" in text["errors"]
    assert ("Blessed" if summary["blessed"] else "Not blessed") in text["verdict"]
    assert summary["blessing_reason"] in text["verdict"] and "tensorflow_model_server" in text["verdict"]
    if summary["pushed_model_dir"]:
        assert summary["pushed_model_dir"] in text["verdict"]

    # the screenshot, kept with a copy of the page for a person to look at
    kept = os.path.join(DEMO_ROOT, "pipeline", os.path.relpath(os.path.dirname(page_path), root))
    shutil.rmtree(DEMO_ROOT, ignore_errors=True)
    shutil.copytree(os.path.dirname(page_path), kept)
    screenshot = os.path.join(kept, "report.png")
    height = min(found["height"], MAX_SCREENSHOT_HEIGHT)
    chromium(tmp_path / "profile", f"--window-size={SCREENSHOT_WIDTH},{height}", f"--screenshot={screenshot}",
             "file://" + os.path.join(kept, run_page.PAGE_NAME))
    with Image.open(screenshot) as image:
        assert image.size == (SCREENSHOT_WIDTH, height)
        assert np.asarray(image.convert("L")).std() > 10  # not a blank page


@pytest.mark.e2e
def test_report_command_rebuilds_the_page_from_metadata_alone(demo_run, demo_page, capsys):
    """Without the run's summary: durations, metrics, verdict and the config change all come
    from ML Metadata and the artifacts."""
    root, summary = demo_run
    page_path, *_ = demo_page
    first_run = ("--pipeline-root", root, "--run", summary["run_id"])
    assert commands.report(report_args(*first_run)) == exit_status.PAGE_WRITTEN
    assert capsys.readouterr().out.strip() == f"[pipeline] wrote {page_path}"
    data = run_page_data.from_result(
        results_metadata.from_metadata(root, DEMO.pipeline_name, "demo", run_id=summary["run_id"]))
    assert data.result.run_id == summary["run_id"] and data.result.profile == "demo"
    assert config_changes.of_record(data.result.execution_properties, "demo") == {
        "evaluator.accuracy_bar": (DEMO.evaluator.accuracy_bar, 0.6)}
    assert data.result.metrics == summary["metrics"] and data.result.blessed == summary["blessed"]
    assert data.result.blessing_reason == summary["blessing_reason"]
    assert data.result.pushed_model_dir == summary["pushed_model_dir"]
    assert [c.name for c in data.result.components] == PIPELINE_ORDER
    assert commands.report(report_args("--pipeline-root", root, "--run", "no-such-run")) == exit_status.USAGE


@pytest.mark.e2e
def test_a_compiled_runs_page_reads_the_same_from_its_task_outputs(demo_run, demo_page):
    """kfp.local keeps no ML Metadata: the page of a run of the compiled spec is built from
    the tasks' output artifacts (whose metadata carries numbers as floats) and says the same
    as the local run's page about the data, the training, the evaluation, the errors and the
    verdict."""
    root, summary = demo_run
    local_page, *_ = demo_page
    twin = compiled_twin(results_metadata.from_metadata(root, DEMO.pipeline_name, "demo", run_id=summary["run_id"]),
                         "compiled-check", parameters={"accuracy_bar": 0.6})
    path = run_page.write_run_page(twin, root)
    assert path == run_page.page_path(root, "compiled-check")
    compiled, local = open(path, encoding="utf-8").read(), open(local_page, encoding="utf-8").read()
    assert re.findall(r'<section id="([^"]+)">', compiled) == SECTION_IDS
    for key in SECTION_IDS[1:]:
        assert section_html(compiled, key) == section_html(local, key), key


def test_the_run_page_step_reads_its_inputs_as_tfxs_container_entrypoint_rebuilds_them(tmp_path):
    """Under kfp.local and KFP the step's inputs come as KFP's metadata, and TFX's container
    entrypoint rebuilds each one (kubeflow_v2_entrypoint_utils): a value its type has no
    property for becomes a JSON custom property, a number a float. The step reads the verdict,
    the serving check and the push from them as from ML Metadata's."""
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils

    from components.run_page import executor

    version = str(tmp_path / "serving" / "cats_vs_dogs" / "2")
    executor_input = pipeline_spec_pb2.ExecutorInput()
    for key, title, metadata in (
            ("blessing", "tfx.ModelBlessing", {"blessed": 1.0, "baseline_model": str(tmp_path / "1")}),
            ("infra_blessing", "tfx.InfraBlessing", {"blessed": 1.0, "reason": "loaded and answered"}),
            ("pushed_model", "tfx.PushedModel", {"pushed": 1.0, "pushed_destination": version})):
        artifact = executor_input.inputs.artifacts[key].artifacts.add(uri=str(tmp_path / key))
        artifact.type.instance_schema = f"title: {title}\ntype: object\n"
        artifact.metadata.update(metadata)
    inputs = kubeflow_v2_entrypoint_utils.parse_raw_artifact_dict(executor_input.inputs.artifacts)
    assert inputs["blessing"][0].mlmd_artifact.custom_properties["blessed"].HasField("struct_value")
    result = executor.record_of(inputs, {"serving_dir": os.path.dirname(version)}, "run-1")
    assert (result.blessed, result.blessing_reason, result.baseline_model) == (True, "passed the gate",
                                                                               str(tmp_path / "1"))
    assert (result.infra_blessed, result.infra_reason) == (True, "loaded and answered")
    assert result.pushed_model_dir == version


def section_html(page: str, key: str) -> str:
    return re.search(rf'<section id="{key}">(.*?)</section>', page, re.S).group(1)


# The page and the verdict the pipeline's last step (RunPage) wrote as the run's own outputs


def run_page_step_outputs(root: str, run_id: str) -> dict[str, str]:
    """The files the run's RunPage execution wrote, by output key ("page": system.HTML,
    "verdict": system.Markdown), found through ML Metadata: the run's execution of the RunPage
    node and its outputs of the types pipeline/steps.py names."""
    store = results_metadata.open_run_store(root)
    executions = results_metadata.run_executions(store, run_id).get(steps.RUN_PAGE.id, [])
    assert len(executions) == 1, f"run {run_id}: {len(executions)} {steps.RUN_PAGE.id} executions"
    assert executions[0].last_known_state == metadata_store_pb2.Execution.COMPLETE, executions[0]
    found = {}
    for key in ("page", "verdict"):
        artifacts = results_metadata.artifacts_of_type(store, executions, steps.RUN_PAGE.outputs[key])
        assert len(artifacts) == 1, f"run {run_id}: {key}: {artifacts}"
        assert os.path.isfile(artifacts[0].uri), artifacts[0].uri  # one file at the URI, not a folder
        found[key] = artifacts[0].uri
    return found


@pytest.mark.e2e
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make setup installs it)")
def test_the_run_page_steps_page_in_chromium_shows_every_section_every_image_and_the_summarys_figures(
        demo_run, tmp_path):
    """The `page` output of the first demo run's RunPage step, as Chromium shows it: every
    section, every image decoded, nothing fetched, and the figures of the run's summary."""
    root, summary = demo_run
    page_path = run_page_step_outputs(root, summary["run_id"])["page"]
    with open(page_path, encoding="utf-8") as f:
        page = f.read()
    assert "<script" not in page and "<link" not in page and "url(" not in page
    assert all(ref.startswith(("data:", "#")) for ref in re.findall(r'(?:src|href)="([^"]*)"', page))
    found = rendered(page_path, tmp_path)
    assert found["resources"] == []  # no request: not even a failed one

    assert [s["id"] for s in found["sections"]] == SECTION_IDS
    assert [s["heading"] for s in found["sections"]] == [heading for _, heading in run_page_html.SECTIONS]
    text = {s["id"]: s["text"] for s in found["sections"]}

    # every image loaded: the curves, the ROC curve, the samples and the errors' thumbnails
    assert len(found["images"]) == page.count("<img ")
    assert [i for i in found["images"] if not (i["complete"] and i["width"] > 0 and i["height"] > 0)] == []
    alts = [i["alt"] for i in found["images"]]
    assert "loss and accuracy per epoch" in alts and "ROC curve" in alts
    assert len([alt for alt in alts if alt.startswith("transformed ")]) == run_page_data.NUM_SAMPLES
    wrong = int(re.search(r"(\d+) of \d+ test images", text["errors"]).group(1))
    assert len([alt for alt in alts if " taken for " in alt]) == min(wrong, run_page_data.MAX_ERRORS) > 0

    # the metrics are the summary's, to the last digit, and so is the confusion matrix
    shown = {m["name"]: m for m in found["metrics"]}
    for name, value in summary["metrics"].items():
        assert float(shown[name]["value"]) == value and shown[name]["text"] == run_page_html._fmt(value), name
    for label, values in summary["metrics_by_label"].items():
        assert float(shown[f"binary_accuracy@{features.LABEL_NAMES[int(label)]}"]["value"]) == values["binary_accuracy"]
    table = re.search(r"<h3>Confusion matrix</h3>\s*<table>(.*?)</table>", page, re.S).group(1)
    matrix = classification.confusion_matrix(summary["metrics_by_label"], features.LABEL_NAMES)
    assert [int(v) for v in re.findall(r'data-value="(\d+)"', table)] == [count for row in matrix for count in row]

    assert summary["run_id"] in text["run"] and "evaluator.accuracy_bar" in text["run"]
    assert all(split in text["data"] for split in ("train", "eval", "test")) and "corrupt files skipped" in text["data"]
    assert "Training images after Transform" in text["data"]
    assert "phase 2 (fine-tuning)" in text["training"] and "s per epoch" in text["training"]
    assert "Accuracy bar 0.6" in text["evaluation"] and "Confusion matrix" in text["evaluation"]
    assert "misclassified" in text["errors"]
    assert ("Servable" if summary["infra_blessed"] else "Not servable") in text["serving-check"]
    assert summary["infra_reason"] in text["serving-check"]
    assert summary["blessed"] and f"Blessed: {summary['blessing_reason']}." in text["verdict"]
    assert summary["pushed_model_dir"] in text["verdict"] and "tensorflow_model_server" in text["verdict"]


@pytest.mark.e2e
def test_a_run_that_is_not_blessed_still_gets_its_step_page_and_verdict(demo_runs):
    """The third demo run (a bar of 1.0) is not blessed: its RunPage step still writes the page
    and the verdict, which say so, why (the summary's reason), and that nothing was pushed."""
    root, [_, _, (result, summary), _] = demo_runs
    assert result.returncode == exit_status.NOT_BLESSED, result.stdout[-3000:] + result.stderr[-3000:]
    assert not summary["blessed"] and summary["pushed_model_dir"] is None
    assert "is below the bar 1.0" in summary["blessing_reason"]
    outputs = run_page_step_outputs(os.path.join(root, "pipeline"), summary["run_id"])
    with open(outputs["page"], encoding="utf-8") as f:
        page = f.read()
    assert re.findall(r'<section id="([^"]+)">', page) == SECTION_IDS
    assert summary["run_id"] in section_text(page, "run")
    verdict = html.unescape(re.sub(r"<[^>]+>", "", section_html(page, "verdict")))  # as a browser reads it
    assert f"Not blessed: {summary['blessing_reason']}." in verdict
    assert "Nothing pushed" in verdict and "Pushed version" not in verdict
    assert "Accuracy bar 1: " in section_text(page, "evaluation") and "is below it" in section_text(page, "evaluation")
    with open(outputs["verdict"], encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert lines[0] == "# Not blessed"
    assert f"**Not blessed**: {summary['blessing_reason']}." in lines
    assert [line for line in lines if line.startswith("- Pushed: ")][0].startswith("- Pushed: none")


@pytest.mark.e2e
def test_the_steps_page_and_the_local_report_agree_but_for_the_orchestrators_record(demo_run, demo_page):
    """The RunPage step's page and the page the local commands write of the same run
    (report.html) say the same of the data, the training, the evaluation, the errors and the
    serving check; the step's run section has no components table (each step's status and
    time are the orchestrator's) and says so. (The verdict is left out: report.html says which
    version is served now, after the later demo runs.)"""
    root, summary = demo_run
    local_page, *_ = demo_page
    with open(run_page_step_outputs(root, summary["run_id"])["page"], encoding="utf-8") as f:
        step = f.read()
    with open(local_page, encoding="utf-8") as f:
        local = f.read()
    assert re.findall(r'<section id="([^"]+)">', step) == SECTION_IDS
    for key in ("data", "training", "evaluation", "errors", "serving-check"):
        assert section_html(step, key) == section_html(local, key), key
    step_run, local_run = section_html(step, "run"), section_html(local, "run")
    assert "<th>component</th>" in local_run and "<img " in local_run  # the table and the timeline
    assert "<th>component</th>" not in step_run and "<img " not in step_run
    assert run_page_html.NO_ORCHESTRATOR_RECORD in section_text(step, "run")
    assert run_page_html.NO_ORCHESTRATOR_RECORD not in section_text(local, "run")
    assert "evaluator.accuracy_bar" in section_text(step, "run")


CACHED_RUN = dict(
    components=[ComponentResult("Trainer", "cached", 0.1, 0.0), ComponentResult("Evaluator", "cached", 0.1, 0.1),
                ComponentResult("Pusher", "cached", 0.1, 0.2)],
    cached_from={"Trainer": "run-1", "Evaluator": "run-2", "Pusher": "run-2"},
    evaluated_in_run="run-2", pushed_model_dir=None, pushed_earlier="/srv/models/cats_vs_dogs/3",
    pushed_in_run="run-2", served_now="/srv/models/cats_vs_dogs/3", candidate_served=True,
    skipped_versions=[{"version": "5", "path": "/srv/models/cats_vs_dogs/5", "reason": "empty folder (no saved_model.pb)"}],
)


def test_a_cached_runs_summary_says_who_evaluated_and_that_it_pushed_nothing():
    result = constructed_page(**CACHED_RUN).result
    lines = result.render().splitlines()
    assert "Evaluator: cached, evaluated in run run-2 against baseline /srv/models/cats_vs_dogs/1" in lines
    assert ("Pushed model: none by this run (pushed in run run-2: /srv/models/cats_vs_dogs/3; "
            "the version served now: /srv/models/cats_vs_dogs/3, this run's own candidate)") in lines
    assert "Skipped serving versions: 1 (5: empty folder (no saved_model.pb))" in lines
    summary = json.loads(result.to_json())
    assert summary["pushed_model_dir"] is None and summary["evaluated_in_run"] == "run-2"
    assert summary["served_now"] == "/srv/models/cats_vs_dogs/3" and summary["candidate_served"] is True
    assert summary["skipped_versions"][0]["version"] == "5" and "cached_from" not in summary


def test_a_runs_own_push_and_an_uncached_refusal_read_as_before():
    pushed = constructed_page().result.render().splitlines()
    assert "Pushed model: /srv/models/cats_vs_dogs/2" in pushed and not any(
        line.startswith(("Evaluator:", "Skipped serving versions")) for line in pushed)
    refused = constructed_page(blessed=False, pushed_model_dir=None, served_now="/srv/models/cats_vs_dogs/1")
    assert "Pushed model: none (the version served now: /srv/models/cats_vs_dogs/1)" in refused.result.render()


def test_a_cached_runs_verdict_section_names_the_run_the_push_and_the_version_served():
    verdict = section_text(run_page_html.render(constructed_page(**CACHED_RUN)), "verdict")
    assert "From the cache: evaluated in run run-2 against baseline /srv/models/cats_vs_dogs/1" in verdict
    assert "Nothing pushed by this run" in verdict and "Pushed version" not in verdict
    assert "The version served now: /srv/models/cats_vs_dogs/3 (this run's own candidate, pushed by run run-2)" in verdict
    assert "Skipped serving versions: 1 (5: empty folder (no saved_model.pb))" in verdict
    assert "--model_base_path=/srv/models/cats_vs_dogs" in verdict


# Run 2's command again, nothing changed: run 2 evaluated against no baseline and pushed version 3.
CACHED_FIRST_MODEL = dict(CACHED_RUN, baseline_model=None, skipped_versions=[], baseline_metrics={},
                          metric_changes={})


def test_a_cached_rerun_of_the_first_push_says_its_own_candidate_is_served():
    data = constructed_page(**CACHED_FIRST_MODEL)
    lines = data.result.render().splitlines()
    assert "Baseline: none (no model was served when run run-2 evaluated: the accuracy bar alone decided)" in lines
    assert ("Pushed model: none by this run (pushed in run run-2: /srv/models/cats_vs_dogs/3; "
            "the version served now: /srv/models/cats_vs_dogs/3, this run's own candidate)") in lines
    page = run_page_html.render(data)
    verdict, evaluation_text = section_text(page, "verdict"), section_text(page, "evaluation")
    assert "The version served now: /srv/models/cats_vs_dogs/3 (this run's own candidate, pushed by run run-2)" in verdict
    assert "No baseline: no model was served when run run-2 evaluated, so the accuracy bar alone decided" in evaluation_text
    everything = "\n".join(lines) + html.unescape(page)
    assert "no model served yet" not in everything and "no model was being served" not in everything
