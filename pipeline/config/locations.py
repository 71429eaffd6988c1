"""Names and locations that several settings share: Kubeflow's pipeline-name rule (it holds
locally too, so a pipeline that runs also compiles), remote URIs and service addresses."""

import re

PIPELINE_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")
URI_PATTERN = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+")


def is_remote_uri(location: str) -> bool:
    return bool(URI_PATTERN.fullmatch(location)) and not location.lower().startswith("file://")


# HOST:PORT of a gRPC service (Beam's job service, a worker pool): no scheme, a port 1-65535.
HOST_PORT_PATTERN = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9_.-]*):([0-9]{1,5})")


def is_host_port(address: str) -> bool:
    match = HOST_PORT_PATTERN.fullmatch(address) if isinstance(address, str) else None
    return bool(match) and 0 < int(match.group(2)) < 65536
