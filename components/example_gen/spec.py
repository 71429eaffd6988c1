"""Component spec: the standard query-based ExampleGen parameters plus where the images come from."""

from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

SOURCE_KEY = "source"
ARCHIVE_KEY = "archive"
FOLDER_KEY = "folder"
TFDS_DATA_DIR_KEY = "tfds_data_dir"
VALIDATE_CHECKSUM_KEY = "validate_checksum"
SOURCE_FINGERPRINT_KEY = "source_fingerprint"
GZIP_OUTPUT_KEY = "gzip_output"


class TfdsExampleGenSpec(ComponentSpec):
    """Split expressions travel in `input_config` (one split per output split, pattern = expression)."""

    PARAMETERS = {
        # The standard output_file_format is left out: it offers gzipped TFRecords or Parquet only.
        **{
            key: parameter
            for key, parameter in standard_component_specs.QueryBasedExampleGenSpec.PARAMETERS.items()
            if key != standard_component_specs.OUTPUT_FILE_FORMAT_KEY
        },
        SOURCE_KEY: ExecutionParameter(type=str),
        ARCHIVE_KEY: ExecutionParameter(type=str, optional=True),
        FOLDER_KEY: ExecutionParameter(type=str, optional=True),
        TFDS_DATA_DIR_KEY: ExecutionParameter(type=str, optional=True),
        VALIDATE_CHECKSUM_KEY: ExecutionParameter(type=bool),
        SOURCE_FINGERPRINT_KEY: ExecutionParameter(type=str),
        GZIP_OUTPUT_KEY: ExecutionParameter(type=bool),
    }
    INPUTS = {}
    OUTPUTS = {
        standard_component_specs.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
    }
