"""The pipeline's steps, one package each, in the order they run:

example_gen/  TfdsExampleGen: cats_vs_dogs through TFDS (or a two-class image folder)
transform/    Transform and its preprocessing_fn: decode and resize
trainer/      Trainer and its run_fn: the model, both training phases, the serving export
evaluator/    Evaluator and its TFMA config: the blessing gate
infra_validator/  InfraValidator: the candidate must load and answer in TF Serving's loader
pusher/       Pusher: the blessed model into TF Serving's folder

What several steps share: `features` (feature keys, label names) and `config` (the typed
configs the components receive).
"""
