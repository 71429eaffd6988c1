"""Pusher: TFX's Pusher, with an executor that makes each version appear all at once, and
that pushes only a model both the Evaluator and the InfraValidator blessed.

TFX's Pusher copies file by file into the serving folder, where TF Serving can pick up a
half-copied version; this one copies to a hidden sibling and renames it into place (see
`executor`). TFX's takes both blessings as optional inputs; here both are required.
"""

from tfx import types
from tfx.components import Pusher as TfxPusher
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2

from components.pusher import executor


class Pusher(TfxPusher):
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, model: types.BaseChannel, model_blessing: types.BaseChannel,
                 infra_blessing: types.BaseChannel, push_destination: pusher_pb2.PushDestination):
        super().__init__(model=model, model_blessing=model_blessing, infra_blessing=infra_blessing,
                         push_destination=push_destination)
