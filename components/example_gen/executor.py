"""Executor: prepares the source, checks the split expressions against it, then runs the base ExampleGen."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import apache_beam as beam
from absl import logging
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.example_gen import write_split
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.util import examples_utils
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components.config import TFDS_DATASET
from components.example_gen import folder_source, sources, spec, tfds_source
from components.example_gen import splits as splits_lib
from components.example_gen.settings import SourceSettings, exec_property_bool

# Custom properties set on the output Examples artifact.
SOURCE_PROPERTY = "source"
TFDS_DATASET_PROPERTY = "tfds_dataset"
SPLIT_EXPRESSIONS_PROPERTY = "split_expressions"  # JSON {split name: expression}
SPLIT_SIZES_PROPERTY = "split_sizes"  # JSON {split name: examples written}
NUM_SKIPPED_FILES_PROPERTY = "num_skipped_files"  # folder source: files that were not decodable images
LABEL_NAMES_PROPERTY = "label_names"  # JSON [name of label 0, name of label 1]

_SKIPPED_REPORTS_KEY = "_skipped_reports_dir"
_SKIPPED_REPORTS_DIR = ".skipped_files"
_MAX_LOGGED_SKIPPED = 20


class Executor(BaseExampleGenExecutor):
    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _ReadSplit

    def Do(self, input_dict, output_dict, exec_properties: dict[str, Any]) -> None:
        settings = SourceSettings.from_exec_properties(exec_properties)
        settings.check()
        if settings.source == sources.SOURCE_TFDS:
            builder = tfds_source.prepare(settings.archive, settings.tfds_data_dir, settings.validate_checksum)
            ranges = splits_lib.resolve_ranges(settings.splits, builder.info.splits)
            label_names = builder.info.features["label"].names
        else:
            ranges = splits_lib.resolve_ranges(settings.splits, sources.folder_source_split(settings.folder))
            label_names = sources.list_class_folders(settings.folder)

        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        reports_dir = os.path.join(examples.uri, _SKIPPED_REPORTS_DIR)
        gzip_output = exec_property_bool(exec_properties.get(spec.GZIP_OUTPUT_KEY, False))
        self._write_examples(examples, {**exec_properties, _SKIPPED_REPORTS_KEY: reports_dir}, gzip_output)

        skipped = _collect_skipped_reports(reports_dir, settings.splits)
        split_sizes = {name: sum(end - start for _, start, end in ranges[name]) - len(skipped.get(name, [])) for name in ranges}
        examples.set_string_custom_property(SOURCE_PROPERTY, settings.source)
        examples.set_string_custom_property(SPLIT_EXPRESSIONS_PROPERTY, json.dumps(settings.splits, sort_keys=True))
        examples.set_string_custom_property(SPLIT_SIZES_PROPERTY, json.dumps(split_sizes, sort_keys=True))
        examples.set_string_custom_property(LABEL_NAMES_PROPERTY, json.dumps(list(label_names)))
        if settings.source == sources.SOURCE_TFDS:
            examples.set_string_custom_property(TFDS_DATASET_PROPERTY, f"{TFDS_DATASET}:{tfds_source.dataset_version()}")
        else:
            num_skipped = sum(len(paths) for paths in skipped.values())
            examples.set_int_custom_property(NUM_SKIPPED_FILES_PROPERTY, num_skipped)
            _log_skipped(settings.folder, skipped, num_skipped)
        logging.info("Wrote examples %s to %s.", split_sizes, examples.uri)

    def _write_examples(self, examples, exec_properties: dict[str, Any], gzip_output: bool) -> None:
        """The base executor's Do, less its gzip and its Reshuffle: each split as serialized
        tf.Examples in TFRecord files, compressed only when asked.

        The Reshuffle would buy nothing: both sources come in shuffled order (TFDS shuffles
        when it prepares the dataset; folder files are ordered by a hash of their path), and
        it cost about 1 ms per image, more than the read, and held every image in memory.
        """
        self._log_startup({}, {standard_component_specs.EXAMPLES_KEY: [examples]}, exec_properties)
        input_config = proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], example_gen_pb2.Input())
        output_config = proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], example_gen_pb2.Output())
        examples.split_names = artifact_utils.encode_split_names(example_gen_utils.generate_output_split_names(input_config, output_config))
        with self._make_beam_pipeline() as pipeline:
            for split_name, records in self.GenerateExamplesByBeam(pipeline, exec_properties).items():
                split_uri = artifact_utils.get_split_uri([examples], split_name)
                _ = records | f"WriteSplit[{split_name}]" >> _WriteTFRecords(split_uri, gzip_output)
        examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
def _ReadSplit(pipeline: beam.Pipeline, exec_properties: dict[str, Any], split_pattern: str) -> beam.PCollection:  # pylint: disable=invalid-name
    """The base executor calls this once per output split, with its split expression as the pattern."""
    settings = SourceSettings.from_exec_properties(exec_properties)
    if settings.source == sources.SOURCE_TFDS:
        return pipeline | "ReadTfds" >> tfds_source.ReadTfdsSplit(settings.tfds_data_dir, split_pattern)
    report_path = os.path.join(exec_properties[_SKIPPED_REPORTS_KEY], _report_name(split_pattern))
    return pipeline | "ReadFolder" >> folder_source.ReadFolderSplit(settings.folder, split_pattern, report_path)


@beam.ptransform_fn
def _WriteTFRecords(records: beam.PCollection, split_uri: str, gzip_output: bool) -> beam.pvalue.PDone:  # pylint: disable=invalid-name
    """Writes serialized tf.Examples: both sources serialize as they build each example."""
    compression = beam.io.filesystem.CompressionTypes.GZIP if gzip_output else beam.io.filesystem.CompressionTypes.UNCOMPRESSED
    return records | "Write" >> beam.io.WriteToTFRecord(
        os.path.join(split_uri, write_split.DEFAULT_TF_RECORD_FILE_NAME),
        file_name_suffix=".gz" if gzip_output else "",
        compression_type=compression,
    )


def _report_name(split_pattern: str) -> str:
    return hashlib.sha256(split_pattern.encode("utf-8")).hexdigest()[:16] + ".txt"


def _collect_skipped_reports(reports_dir: str, splits: dict[str, str]) -> dict[str, list[str]]:
    """{split name: skipped relative paths} from the folder reader's reports, which are then removed."""
    if not fileio.exists(reports_dir):
        return {}
    skipped = {}
    for name, expression in splits.items():
        with fileio.open(os.path.join(reports_dir, _report_name(expression))) as report:
            skipped[name] = report.read().splitlines()
    fileio.rmtree(reports_dir)
    return skipped


def _log_skipped(folder: str, skipped: dict[str, list[str]], num_skipped: int) -> None:
    if not num_skipped:
        return
    examples = sorted(path for paths in skipped.values() for path in paths)[:_MAX_LOGGED_SKIPPED]
    logging.warning(
        "Skipped %d files in %s that are not decodable images (%s), e.g. %s.",
        num_skipped, folder, {name: len(paths) for name, paths in skipped.items()}, examples,
    )
