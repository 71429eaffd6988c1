"""Pusher step: the blessed model into TF Serving's folder layout, one version at a time."""

from components.pusher.component import Pusher

__all__ = ["Pusher"]
