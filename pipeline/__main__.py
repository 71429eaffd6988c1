import sys

from pipeline.cli import console

console.no_progress_bars_off_terminal()
console.drop_native_noise()

from pipeline.cli.main import main  # noqa: E402  (after the console filter, before TensorFlow loads)

sys.exit(main())
