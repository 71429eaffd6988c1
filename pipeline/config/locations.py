"""Locations that several settings share: remote URIs (the pipeline-name and HOST:PORT patterns
are beside their settings, in components/config.py)."""

import re

URI_PATTERN = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+")


def is_remote_uri(location: str) -> bool:
    return bool(URI_PATTERN.fullmatch(location)) and not location.lower().startswith("file://")
