"""The component's source settings, as given to the constructor and as exec properties."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from components.example_gen import sources, spec, tfds_source
from components.example_gen import splits as splits_lib


@dataclasses.dataclass(frozen=True)
class SourceSettings:
    source: str
    archive: Optional[str]
    folder: Optional[str]
    tfds_data_dir: Optional[str]
    splits: dict[str, str]
    validate_checksum: bool

    @classmethod
    def from_exec_properties(cls, exec_properties: dict[str, Any]) -> "SourceSettings":
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        return cls(
            source=exec_properties[spec.SOURCE_KEY],
            archive=exec_properties.get(spec.ARCHIVE_KEY) or None,
            folder=exec_properties.get(spec.FOLDER_KEY) or None,
            tfds_data_dir=exec_properties.get(spec.TFDS_DATA_DIR_KEY) or None,
            splits=splits_lib.from_input_config(input_config),
            validate_checksum=exec_property_bool(exec_properties.get(spec.VALIDATE_CHECKSUM_KEY, False)),
        )

    def check(self) -> None:
        """Raises ValueError, naming the input and the fix, for anything wrong before data is read.

        TFDS split expressions are checked against a nominal size here; against the
        prepared dataset's real size in `source_splits`.
        """
        sources.check_source_arguments(self.source, self.archive, self.folder)
        if self.source == sources.SOURCE_FOLDER:
            splits_lib.resolve_ranges(self.splits, sources.folder_source_split(self.folder))
            return
        if self.archive:
            sources.check_archive(self.archive)
        splits_lib.check_expressions(self.splits)

    def fingerprint(self) -> str:
        return sources.source_fingerprint(
            self.source, self.archive, self.folder, self.splits, tfds_source.dataset_version()
        )


def exec_property_bool(value: Any) -> bool:
    """A bool exec property as it arrives: a bool when called directly, the string "true" or
    "false" when an orchestrator read it back from ML Metadata, 0 or 1 (possibly as a string)
    from a Kubeflow parameter."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return bool(value)
