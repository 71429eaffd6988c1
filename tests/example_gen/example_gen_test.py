"""TfdsExampleGen on the generated sample: through TFDS's builder, and as an extracted folder."""

import json
import os
import zipfile

import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import proto_utils

from components import features
from components.config import SAMPLE_ARCHIVE_NAME
from components.example_gen import spec
from components.example_gen import executor as executor_lib
from components.example_gen.component import TfdsExampleGen
from components.serving import tfrecords
from data import sample_archive
from pipeline.beam import arguments as beam_arguments
from pipeline.config import settings as pipeline_config

IMAGES_PER_CLASS = 30
VALID_IMAGES = 2 * IMAGES_PER_CLASS
EXPECTED_SPLIT_SIZES = {"train": 24, "eval": 6, "test": 6}  # 40/10/10 % of the valid images


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    path = tmp_path_factory.mktemp("archive") / SAMPLE_ARCHIVE_NAME
    return str(sample_archive.generate_sample_archive(path, images_per_class=IMAGES_PER_CLASS, seed=3))


@pytest.fixture(scope="module")
def tfds_data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="module")
def tfds_run(archive, tfds_data_dir, tmp_path_factory):
    component = TfdsExampleGen(archive=archive, tfds_data_dir=tfds_data_dir)
    return _run_executor(component, tmp_path_factory.mktemp("tfds_examples"))


@pytest.fixture(scope="module")
def pet_images_folder(archive, tmp_path_factory):
    root = tmp_path_factory.mktemp("extracted")
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(root)
    return str(root / "PetImages")


@pytest.fixture(scope="module")
def folder_run(pet_images_folder, tmp_path_factory):
    component = TfdsExampleGen(source="folder", folder=pet_images_folder)
    return _run_executor(component, tmp_path_factory.mktemp("folder_examples"))


def test_tfds_split_sizes_follow_the_split_expressions(tfds_run):
    artifact, examples = tfds_run
    assert {name: len(records) for name, records in examples.items()} == EXPECTED_SPLIT_SIZES
    assert json.loads(artifact.get_string_custom_property(executor_lib.SPLIT_SIZES_PROPERTY)) == EXPECTED_SPLIT_SIZES
    assert artifact_utils.decode_split_names(artifact.split_names) == ["train", "eval", "test"]


def test_tfds_examples_are_decodable_labelled_and_disjoint(tfds_run):
    _, examples = tfds_run
    _assert_decodable_labelled_and_disjoint(examples)


def test_tfds_examples_hold_no_corrupt_entry(tfds_run, archive):
    _, examples = tfds_run
    corrupt = _corrupt_entry_names(archive)
    written = {record["filename"] for records in examples.values() for record in records}
    assert len(corrupt) == sample_archive.NUM_CORRUPT_ENTRIES
    assert written and not written & corrupt
    assert all(name.startswith(("PetImages/Cat/", "PetImages/Dog/")) for name in written)


def test_tfds_artifact_properties(tfds_run):
    artifact, _ = tfds_run
    assert artifact.get_string_custom_property(executor_lib.SOURCE_PROPERTY) == "tfds"
    assert artifact.get_string_custom_property(executor_lib.TFDS_DATASET_PROPERTY).startswith("cats_vs_dogs:")
    assert json.loads(artifact.get_string_custom_property(executor_lib.LABEL_NAMES_PROPERTY)) == ["cat", "dog"]
    assert artifact.get_string_custom_property("payload_format") == "FORMAT_TF_EXAMPLE"


def test_examples_are_plain_tfrecords_that_tfx_readers_take(tfds_run):
    # StatisticsGen, Transform and the Evaluator read through tfxio, which must see plain files.
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to
    from tfx.components.util import tfxio_utils

    artifact, _ = tfds_run
    split_uri = artifact_utils.get_split_uri([artifact], "train")
    names = os.listdir(split_uri)
    assert names and all(name.startswith("data_tfrecord-") and not name.endswith(".gz") for name in names)
    assert all(open(os.path.join(split_uri, name), "rb").read(2) != b"\x1f\x8b" for name in names)
    make_tfxio = tfxio_utils.get_tfxio_factory_from_artifact([artifact], telemetry_descriptors=["test"])
    with beam.Pipeline() as pipeline:
        rows = (
            pipeline
            | make_tfxio(os.path.join(split_uri, "*")).BeamSource(batch_size=7)
            | beam.Map(lambda batch: batch.num_rows)
            | beam.CombineGlobally(sum)
        )
        assert_that(rows, equal_to([EXPECTED_SPLIT_SIZES["train"]]))


@pytest.mark.parametrize("run", ["tfds_run", "folder_run"])
def test_examples_are_written_in_mixed_label_order(run, request):
    # The executor writes without a Reshuffle, relying on both sources' own shuffled order.
    _, examples = request.getfixturevalue(run)
    labels = [record["label"] for record in examples["train"]]
    label_changes = sum(a != b for a, b in zip(labels, labels[1:]))
    assert label_changes >= len(labels) // 4, labels


def test_gzip_output_writes_the_same_examples_gzipped(tfds_run, archive, tfds_data_dir, tmp_path):
    _, plain_examples = tfds_run
    artifact, gzipped_examples = _run_executor(TfdsExampleGen(archive=archive, tfds_data_dir=tfds_data_dir, gzip_output=True), tmp_path)
    split_uri = artifact_utils.get_split_uri([artifact], "train")
    names = os.listdir(split_uri)
    assert names and all(name.endswith(".gz") for name in names)
    assert all(open(os.path.join(split_uri, name), "rb").read(2) == b"\x1f\x8b" for name in names)
    by_name = lambda examples: {split: sorted(records, key=lambda r: r["filename"]) for split, records in examples.items()}  # noqa: E731
    assert by_name(gzipped_examples) == by_name(plain_examples)


def test_second_tfds_run_reuses_the_prepared_data(tfds_run, archive, tfds_data_dir, tmp_path, monkeypatch):
    info_file = _dataset_info_file(tfds_data_dir)
    prepared_at = os.stat(info_file).st_mtime_ns
    _, first_examples = tfds_run
    read_configs = _record_read_configs(monkeypatch)
    _, second_examples = _run_executor(TfdsExampleGen(archive=archive, tfds_data_dir=tfds_data_dir), tmp_path)
    assert os.stat(info_file).st_mtime_ns == prepared_at
    assert _filenames(second_examples) == _filenames(first_examples)
    # Each split is one shard read; none of them is cached in memory (the sample is small
    # enough for TFDS's auto-cache, which a single pass only pays for).
    assert len(read_configs) == len(EXPECTED_SPLIT_SIZES)
    assert all(config is not None and not config.try_autocache for config in read_configs)


def test_a_changed_archive_is_prepared_again(tmp_path):
    archive = sample_archive.generate_sample_archive(tmp_path / "a" / SAMPLE_ARCHIVE_NAME, images_per_class=5)
    data_dir = str(tmp_path / "tfds")
    _run_executor(TfdsExampleGen(archive=str(archive), tfds_data_dir=data_dir), tmp_path / "first")
    sample_archive.generate_sample_archive(archive, images_per_class=10)
    artifact, _ = _run_executor(TfdsExampleGen(archive=str(archive), tfds_data_dir=data_dir), tmp_path / "second")
    assert json.loads(artifact.get_string_custom_property(executor_lib.SPLIT_SIZES_PROPERTY)) == {"train": 8, "eval": 2, "test": 2}


def test_an_archive_under_another_name_is_read(archive, tmp_path):
    renamed = tmp_path / "my_copy.zip"
    os.link(archive, renamed)
    component = TfdsExampleGen(archive=str(renamed), tfds_data_dir=str(tmp_path / "tfds"), splits={"all": "train"})
    _, examples = _run_executor(component, tmp_path / "examples")
    assert len(examples["all"]) == VALID_IMAGES


def test_folder_split_sizes_and_skipped_files(folder_run, pet_images_folder):
    artifact, examples = folder_run
    num_files = sum(len(files) for _, _, files in os.walk(pet_images_folder))
    selected = round(0.6 * num_files)
    num_skipped = artifact.get_int_custom_property(executor_lib.NUM_SKIPPED_FILES_PROPERTY)
    assert num_skipped > 0
    assert sum(len(records) for records in examples.values()) + num_skipped == selected
    undecodable = _undecodable_files(pet_images_folder)
    written = {os.path.relpath(r["filename"], "PetImages") for records in examples.values() for r in records}
    assert not written & undecodable
    assert json.loads(artifact.get_string_custom_property(executor_lib.SPLIT_SIZES_PROPERTY)) == {
        name: len(records) for name, records in examples.items()
    }


def test_folder_examples_are_decodable_labelled_and_disjoint(folder_run):
    artifact, examples = folder_run
    _assert_decodable_labelled_and_disjoint(examples)
    assert artifact.get_string_custom_property(executor_lib.SOURCE_PROPERTY) == "folder"
    assert json.loads(artifact.get_string_custom_property(executor_lib.LABEL_NAMES_PROPERTY)) == ["Cat", "Dog"]


def test_folder_labels_follow_the_class_folders(folder_run):
    _, examples = folder_run
    for records in examples.values():
        for record in records:
            assert record["label"] == (0 if "/Cat/" in record["filename"] else 1)


def test_folder_splits_are_deterministic(folder_run, pet_images_folder, tmp_path):
    _, first_examples = folder_run
    _, second_examples = _run_executor(TfdsExampleGen(source="folder", folder=pet_images_folder), tmp_path)
    assert _filenames(second_examples) == _filenames(first_examples)


@pytest.mark.parametrize("run", ["tfds_run", "folder_run"])
def test_worker_processes_write_the_same_examples(run, archive, tfds_data_dir, pet_images_folder, tmp_path, request):
    """`beam_running_mode=multi_processing`: the sources' DoFns run in other processes."""
    first_artifact, first_examples = request.getfixturevalue(run)
    if run == "tfds_run":
        component = TfdsExampleGen(archive=archive, tfds_data_dir=tfds_data_dir)
    else:
        component = TfdsExampleGen(source="folder", folder=pet_images_folder)
    config = pipeline_config.demo_profile()
    config.beam_running_mode, config.beam_workers = "multi_processing", 2
    artifact, examples = _run_executor(component, tmp_path, beam_arguments.beam_args(config))
    assert _filenames(examples) == _filenames(first_examples)
    for name in (executor_lib.SPLIT_SIZES_PROPERTY, executor_lib.LABEL_NAMES_PROPERTY):
        assert artifact.get_string_custom_property(name) == first_artifact.get_string_custom_property(name)
    if run == "folder_run":
        num_skipped = artifact.get_int_custom_property(executor_lib.NUM_SKIPPED_FILES_PROPERTY)
        assert num_skipped == first_artifact.get_int_custom_property(executor_lib.NUM_SKIPPED_FILES_PROPERTY) > 0


def _run_executor(component, output_dir, beam_args=None):
    """Runs the component's executor on its exec properties with the demo's Beam arguments
    (Beam in this process) unless `beam_args` say otherwise; returns (artifact, records per split)."""
    beam_args = beam_args or beam_arguments.beam_args(pipeline_config.demo_profile())
    exec_properties = {
        key: proto_utils.proto_to_json(value) if hasattr(value, "DESCRIPTOR") else value
        for key, value in component.exec_properties.items()
    }
    artifact = standard_artifacts.Examples()
    artifact.uri = str(output_dir)
    context = BaseBeamExecutor.Context(beam_pipeline_args=list(beam_args), tmp_dir=str(output_dir))
    executor_lib.Executor(context).Do({}, {"examples": [artifact]}, exec_properties)
    names = artifact_utils.decode_split_names(artifact.split_names)
    return artifact, {name: _read_split(artifact, name) for name in names}


def _record_read_configs(monkeypatch):
    """The read_config of every DatasetBuilder.as_dataset call from now on (Beam runs in this process)."""
    read_configs = []
    as_dataset = tfds.core.DatasetBuilder.as_dataset

    def recording_as_dataset(self, *args, **kwargs):
        read_configs.append(kwargs.get("read_config"))
        return as_dataset(self, *args, **kwargs)

    monkeypatch.setattr(tfds.core.DatasetBuilder, "as_dataset", recording_as_dataset)
    return read_configs


def _read_split(artifact, split_name):
    pattern = os.path.join(artifact_utils.get_split_uri([artifact], split_name), "*")
    records = []
    for serialized in tfrecords.dataset(tf.io.gfile.glob(pattern)):
        feature = tf.train.Example.FromString(serialized.numpy()).features.feature
        records.append(
            {
                "image": feature[features.IMAGE_KEY].bytes_list.value[0],
                "label": feature[features.LABEL_KEY].int64_list.value[0],
                "filename": feature[features.FILENAME_KEY].bytes_list.value[0].decode("utf-8"),
            }
        )
    return records


def _assert_decodable_labelled_and_disjoint(examples):
    seen = set()
    for name, records in examples.items():
        labels = [record["label"] for record in records]
        assert set(labels) <= {0, 1}
        if name == "train":
            assert 0.25 < sum(labels) / len(labels) < 0.75, labels
        for record in records:
            assert tf.io.decode_jpeg(record["image"], channels=3).shape[-1] == 3
        filenames = {record["filename"] for record in records}
        assert len(filenames) == len(records)
        assert not filenames & seen
        seen |= filenames


def _filenames(examples):
    return {name: sorted(record["filename"] for record in records) for name, records in examples.items()}


def _corrupt_entry_names(archive):
    with zipfile.ZipFile(archive) as opened:
        names = set()
        for info in opened.infolist():
            if info.filename.endswith(".jpg"):
                with opened.open(info) as entry:
                    if b"JFIF" not in entry.peek(10):
                        names.add(info.filename)
        return names


def _undecodable_files(folder):
    """Relative paths of the files that PIL cannot decode, found independently of the component."""
    result = set()
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            try:
                with Image.open(path) as image:
                    image.load()
            except (OSError, SyntaxError):
                result.add(os.path.relpath(path, folder))
    return result


def _dataset_info_file(data_dir):
    (version_dir,) = [os.path.join(root) for root, _, files in os.walk(data_dir) if "dataset_info.json" in files]
    return os.path.join(version_dir, "dataset_info.json")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"archive": "/no/such/kagglecatsanddogs_5340.zip"}, "does not exist"),
        ({"source": "folder", "folder": "/no/such/PetImages"}, "does not exist"),
        ({"source": "s3"}, "is not one of"),
        ({"source": "folder"}, "needs folder=PATH"),
        ({"splits": {"train": "train[:40%%]"}}, "TFDS rejects the split expression"),
        ({"splits": {"train": "validation[:10%]"}}, "Unknown split 'validation'"),
        ({"splits": {"train": "train[:50%]", "eval": "train[40%:60%]"}}, "overlap"),
        ({"splits": {}}, "splits is empty"),
    ],
)
def test_bad_arguments_are_named_with_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TfdsExampleGen(**kwargs)


def test_an_archive_that_is_not_a_zip(tmp_path):
    not_zip = tmp_path / SAMPLE_ARCHIVE_NAME
    not_zip.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=f"{not_zip}.*is not a zip file"):
        TfdsExampleGen(archive=str(not_zip))


def test_a_zip_without_pet_images(tmp_path):
    other = tmp_path / SAMPLE_ARCHIVE_NAME
    with zipfile.ZipFile(other, "w") as opened:
        opened.writestr("photos/1.jpg", b"")
    with pytest.raises(ValueError, match="has no PetImages/ folder"):
        TfdsExampleGen(archive=str(other))


def test_folder_needs_exactly_two_non_empty_classes(tmp_path):
    for name in ("cat", "dog", "bird"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "1.jpg").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"has 3 class sub-folders \['bird', 'cat', 'dog'\]; it needs exactly two"):
        TfdsExampleGen(source="folder", folder=str(tmp_path))
    (tmp_path / "bird" / "1.jpg").unlink()
    (tmp_path / "bird").rmdir()
    (tmp_path / "dog" / "1.jpg").unlink()
    with pytest.raises(ValueError, match=r"Class folder .*dog' is empty"):
        TfdsExampleGen(source="folder", folder=str(tmp_path))


def test_checksum_validation_rejects_a_sample_before_preparing(archive, tmp_path):
    component = TfdsExampleGen(archive=archive, tfds_data_dir=str(tmp_path / "tfds"), validate_checksum=True)
    with pytest.raises(ValueError, match="is not the original kagglecatsanddogs_5340.zip.*824,887,076 bytes"):
        _run_executor(component, tmp_path / "examples")
    assert not (tmp_path / "tfds").exists() or not list((tmp_path / "tfds").rglob("dataset_info.json"))


def test_split_beyond_the_prepared_size_fails_before_beam(tfds_run, archive, tfds_data_dir, tmp_path):
    component = TfdsExampleGen(archive=archive, tfds_data_dir=tfds_data_dir, splits={"train": "train[:1000]"})
    with pytest.raises(ValueError, match=r"Split 'train'.*incompatible with 60 examples"):
        _run_executor(component, tmp_path)
    assert not list(tmp_path.rglob("Split-*"))


def test_a_removed_archive_fails_at_executor_start(tmp_path):
    archive = sample_archive.generate_sample_archive(tmp_path / SAMPLE_ARCHIVE_NAME, images_per_class=2)
    component = TfdsExampleGen(archive=str(archive), tfds_data_dir=str(tmp_path / "tfds"))
    archive.unlink()
    with pytest.raises(ValueError, match="does not exist"):
        _run_executor(component, tmp_path / "examples")


def test_the_fingerprint_follows_the_source(archive, tmp_path):
    first = TfdsExampleGen(archive=archive).exec_properties[spec.SOURCE_FINGERPRINT_KEY]
    assert TfdsExampleGen(archive=archive).exec_properties[spec.SOURCE_FINGERPRINT_KEY] == first
    assert TfdsExampleGen(archive=archive, splits={"train": "train[:50%]"}).exec_properties[spec.SOURCE_FINGERPRINT_KEY] != first
    assert TfdsExampleGen().exec_properties[spec.SOURCE_FINGERPRINT_KEY] != first
    touched = tmp_path / SAMPLE_ARCHIVE_NAME
    touched.write_bytes(open(archive, "rb").read())
    assert TfdsExampleGen(archive=str(touched)).exec_properties[spec.SOURCE_FINGERPRINT_KEY] != first


@pytest.mark.e2e
def test_a_rerun_of_the_pipeline_reuses_the_cached_artifact(tfds_run, archive, tfds_data_dir, tmp_path):
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2
    from tfx import v1 as tfx

    metadata_config = tfx.orchestration.metadata.sqlite_metadata_connection_config(str(tmp_path / "metadata.db"))

    def run_pipeline():
        tfx.orchestration.LocalDagRunner().run(
            tfx.dsl.Pipeline(
                pipeline_name="example_gen_cache",
                pipeline_root=str(tmp_path / "root"),
                components=[TfdsExampleGen(archive=archive, tfds_data_dir=tfds_data_dir)],
                enable_cache=True,
                metadata_connection_config=metadata_config,
                beam_pipeline_args=beam_arguments.beam_args(pipeline_config.demo_profile()),
            )
        )

    run_pipeline()
    run_pipeline()
    store = metadata_store.MetadataStore(metadata_config)
    states = [execution.last_known_state for execution in sorted(store.get_executions(), key=lambda e: e.id)]
    assert states == [metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED]
    (examples,) = store.get_artifacts_by_type("Examples")
    assert json.loads(examples.custom_properties[executor_lib.SPLIT_SIZES_PROPERTY].string_value) == EXPECTED_SPLIT_SIZES


@pytest.mark.parametrize("stored, expected", [(False, False), (True, True), ("false", False), ("true", True), (0, False), (1, True), ("0", False), ("1", True)])
def test_validate_checksum_reads_back_as_ml_metadata_stores_it(stored, expected):
    # LocalDagRunner hands bool exec properties back as the strings "true"/"false".
    from components.example_gen.settings import exec_property_bool

    assert exec_property_bool(stored) is expected
