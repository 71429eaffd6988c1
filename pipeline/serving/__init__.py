"""TF Serving: the predict client, check-serving, and TensorFlow's C++ loader (c_loader)."""
