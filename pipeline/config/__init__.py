"""The pipeline's side of the settings declared in components/config.py: their profiles and
overrides (settings), the rules that need the steps' or the pipeline's code and the whole
table of rules (rules), the names trainer.accelerator may take (accelerators), the runtime
tunables (tunables), location helpers (locations) and what Kubeflow pods can reach
(kubeflow)."""
