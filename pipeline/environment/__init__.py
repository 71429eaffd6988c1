"""What this environment can train on: the GPU stack as TensorFlow reaches it (gpu), the doctor
command's screen (doctor) and the notice a run prints before it trains on the CPU (notice)."""
