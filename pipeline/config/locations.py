"""Names and locations that several settings share: Kubeflow's pipeline-name rule (it holds
locally too, so a pipeline that runs also compiles) and remote URIs."""

import re

PIPELINE_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")
URI_PATTERN = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+")


def is_remote_uri(location: str) -> bool:
    return bool(URI_PATTERN.fullmatch(location)) and not location.lower().startswith("file://")
