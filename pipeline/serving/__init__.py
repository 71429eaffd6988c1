"""TF Serving: the predict client and check-serving (TF Serving's C++ loader is components/infra_validator/c_loader)."""
