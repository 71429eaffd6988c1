"""Known harmless TFX/Beam warnings are left out of the console; other warnings still show."""

import logging

from pipeline import console


def test_harmless_tfx_warnings_are_dropped_and_others_kept(caplog):
    console.quiet_known_noise()
    absl_logger = logging.getLogger("absl")
    with caplog.at_level(logging.WARNING):
        absl_logger.warning("ArtifactQuery.property_predicate is not supported.")
        absl_logger.warning("Fallback to non-ZetaSQL contexts execution query due to: %s", "x")
        absl_logger.warning("Examples artifact has no payload_format")
    assert [r.getMessage() for r in caplog.records] == ["Examples artifact has no payload_format"]


def test_beam_worker_chatter_is_raised_to_errors_only():
    console.quiet_known_noise()
    assert logging.getLogger("apache_beam.runners.portability.local_job_service").getEffectiveLevel() == logging.ERROR
