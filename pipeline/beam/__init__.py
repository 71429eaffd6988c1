"""Beam for the pipeline's Beam steps: every Beam argument they get (arguments) and a local
job service and worker pool for beam_runner=portable (services)."""
