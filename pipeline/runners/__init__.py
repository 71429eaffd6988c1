"""Ways to run the pipeline: local (LocalDagRunner), kubeflow (compile), compiled (kfp.local),
task_entrypoint (what each compiled task runs), and what they share: inputs, preflight,
lock, progress."""
