"""Prepares cats_vs_dogs with TFDS's own builder and reads its splits as tf.Examples."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Optional

import apache_beam as beam
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging

from components.config import SAMPLE_ARCHIVE_NAME, TFDS_DATASET
from components.example_gen import sources
from components.example_gen.examples import serialized_example

_PREPARED_FROM_FILE = "prepared_from.json"


def dataset_version() -> str:
    return str(tfds.builder_cls(TFDS_DATASET).VERSION)


def prepare(archive: Optional[str], data_dir: Optional[str], validate_checksum: bool) -> tfds.core.DatasetBuilder:
    """Returns the prepared cats_vs_dogs builder, preparing it only if `data_dir` lacks this source's data.

    With `archive`, TFDS's builder reads it through `DownloadConfig(manual_dir=...)`; without
    validation it accepts the archive's own checksum, which is how a sample archive is used.
    """
    source = sources.source_fingerprint(sources.SOURCE_TFDS, archive, None, {}, dataset_version())
    builder = tfds.builder(TFDS_DATASET, data_dir=data_dir)
    prepared_from = _read_prepared_from(builder)
    if builder.is_prepared() and prepared_from in (None, source):
        logging.info("Reusing the prepared %s in %s (prepared from %s).", TFDS_DATASET, builder.data_dir, prepared_from)
        return builder
    overwrite = builder.is_prepared()
    if overwrite:
        logging.warning("%s in %s was prepared from %s; preparing it again from %s.", TFDS_DATASET, builder.data_dir, prepared_from, source)
    if archive:
        if validate_checksum:
            sources.check_archive_checksum(archive)
        _prepare_from_archive(builder, archive, validate_checksum, overwrite)
    else:
        _prepare_by_download(builder, overwrite)
    tf.io.gfile.GFile(os.path.join(builder.data_dir, _PREPARED_FROM_FILE), "w").write(json.dumps(source))
    return tfds.builder(TFDS_DATASET, data_dir=data_dir)


def tfds_record_to_example(record: dict[str, Any]) -> bytes:
    """A TFDS cats_vs_dogs record (image left encoded) as the pipeline's serialized tf.Example."""
    return serialized_example(record["image"].numpy(), int(record["label"].numpy()), record["image/filename"].numpy())


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(bytes)
def ReadTfdsSplit(pipeline: beam.Pipeline, data_dir: Optional[str], split_expression: str) -> beam.PCollection:  # pylint: disable=invalid-name
    """The serialized tf.Examples of a TFDS split expression of the prepared dataset, JPEG bytes undecoded."""
    builder = tfds.builder(TFDS_DATASET, data_dir=data_dir)
    read = tfds.beam.ReadFromTFDS(
        builder, split_expression, decoders={"image": tfds.decode.SkipDecoding()}, read_config=read_config()
    )
    return pipeline | "ReadFromTFDS" >> read | "ToTFExample" >> beam.Map(tfds_record_to_example)


def read_config() -> tfds.ReadConfig:
    """How ExampleGen's reads ask TFDS for a shard: read once, never cached.

    TFDS caches a dataset under 250 MiB in memory by default (the sample's is). ReadFromTFDS
    reads a whole shard and skips to each split's start, so every split would cache the
    records before its own and then drop the partial cache (TF warns that it does), about 10%
    of ExampleGen's time on the 1000-per-class sample.
    """
    return tfds.ReadConfig(try_autocache=False)


def _read_prepared_from(builder: tfds.core.DatasetBuilder) -> Optional[str]:
    path = os.path.join(builder.data_dir, _PREPARED_FROM_FILE)
    if not tf.io.gfile.exists(path):
        return None
    return json.loads(tf.io.gfile.GFile(path).read())


def _download_mode(overwrite: bool) -> tfds.download.GenerateMode:
    return tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS if overwrite else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS


def _prepare_by_download(builder: tfds.core.DatasetBuilder, overwrite: bool) -> None:
    try:
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(download_mode=_download_mode(overwrite)))
    except Exception as error:  # TFDS raises many kinds for a failed download.
        raise RuntimeError(
            f"TFDS could not download and prepare {TFDS_DATASET} from {sources.ARCHIVE_URL} ({error}). "
            f"Without internet, download {SAMPLE_ARCHIVE_NAME} elsewhere and pass archive=PATH, "
            f"or {sources.SAMPLE_HINT}."
        ) from error


def _prepare_from_archive(builder: tfds.core.DatasetBuilder, archive: str, validate_checksum: bool, overwrite: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="tfds_manual_") as link_dir:
        manual_dir = _manual_dir_for(archive, link_dir)
        if not validate_checksum:
            _accept_archive_checksum(builder, os.path.join(manual_dir, SAMPLE_ARCHIVE_NAME))
        config = tfds.download.DownloadConfig(
            manual_dir=manual_dir, download_mode=_download_mode(overwrite), try_download_gcs=False
        )
        builder.download_and_prepare(download_config=config)


def _manual_dir_for(archive: str, link_dir: str) -> str:
    """TFDS looks for the archive under its original file name; link it so when it has another name."""
    archive = os.path.abspath(archive)
    if os.path.basename(archive) == SAMPLE_ARCHIVE_NAME:
        return os.path.dirname(archive)
    os.symlink(archive, os.path.join(link_dir, SAMPLE_ARCHIVE_NAME))
    return link_dir


def _accept_archive_checksum(builder: tfds.core.DatasetBuilder, archive: str) -> None:
    """Makes this builder's download manager expect `archive`'s own size and sha256.

    TFDS validates a manually supplied file against the real archive's registered checksum
    and offers no public switch to accept another one; the builder's download manager is
    created per preparation, so the registration is changed on that manager only.
    """
    url_info = tfds.download.checksums.compute_url_info(archive)
    make_download_manager = builder._make_download_manager  # pylint: disable=protected-access

    def make_download_manager_accepting_archive(**kwargs):
        manager = make_download_manager(**kwargs)
        manager._url_infos[sources.ARCHIVE_URL] = url_info  # pylint: disable=protected-access
        return manager

    builder._make_download_manager = make_download_manager_accepting_archive  # pylint: disable=protected-access
