"""What the tests and the benchmarks share: sample images, the loopback TF Serving servers,
the small serving model, a small disk. Imported as `support` by the tests (pytest puts
tests/ on the path) and as `tests.support` by the benchmarks (run from the checkout's top),
so its modules import each other relatively."""
