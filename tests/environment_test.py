"""The environment made by `make setup` holds a working TFX stack."""

import os
import pathlib
import subprocess

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_stack_imports_with_pinned_versions():
    import ml_metadata
    import tensorflow as tf
    import tensorflow_data_validation as tfdv
    import tensorflow_transform as tft
    import tfx

    assert tfx.__version__ == "1.21.0"
    assert tf.__version__.startswith("2.21.")
    assert tft.__version__ == "1.21.0"
    assert tfdv.__version__ == "1.21.0"
    assert ml_metadata.__version__ == "1.21.0"


def test_ml_metadata_sqlite_store_round_trip(tmp_path):
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(tmp_path / "metadata.sqlite")
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    store = metadata_store.MetadataStore(config)
    artifact_type = metadata_store_pb2.ArtifactType(name="Probe")
    type_id = store.put_artifact_type(artifact_type)
    [artifact_id] = store.put_artifacts([metadata_store_pb2.Artifact(type_id=type_id, uri="/probe")])
    [stored] = store.get_artifacts_by_id([artifact_id])
    assert stored.uri == "/probe"
    assert (tmp_path / "metadata.sqlite").stat().st_size > 0


def test_tiny_beam_pipeline_runs():
    options = beam.options.pipeline_options.PipelineOptions(["--direct_running_mode=in_memory"])
    with beam.Pipeline(options=options) as p:
        squares = p | beam.Create([1, 2, 3]) | beam.Map(lambda x: x * x)
        assert_that(squares, equal_to([1, 4, 9]))


def test_in_env_keeps_cwd_environment_and_exit_status(tmp_path):
    result = subprocess.run(
        [str(REPO / "tools/in-env"), "sh", "-c", 'pwd; echo "$PROBE_VALUE"; exit 7'],
        cwd=REPO / "tests",
        env={**os.environ, "PROBE_VALUE": "kept"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 7
    assert result.stdout.splitlines() == [str(REPO / "tests"), "kept"]


def test_in_env_without_command_is_a_usage_error():
    result = subprocess.run([str(REPO / "tools/in-env")], capture_output=True, text=True)
    assert result.returncode == 2
    assert "usage" in result.stderr
