"""TF Serving: the predict client and check-serving (TF Serving's C++ loader is components/serving/c_loader.py)."""
