"""Pusher: TFX's Pusher, with an executor that makes each version appear all at once.

TFX's Pusher copies file by file into the serving folder, where TF Serving can pick up a
half-copied version; this one copies to a hidden sibling and renames it into place (see
`executor`).
"""

from tfx.components import Pusher as TfxPusher
from tfx.dsl.components.base import executor_spec

from components.pusher import executor


class Pusher(TfxPusher):
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)
