import sys

from pipeline import console

console.drop_native_noise()

from pipeline.cli import main  # noqa: E402  (after the console filter, before TensorFlow loads)

sys.exit(main())
