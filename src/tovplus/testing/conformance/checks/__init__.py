"""The conformance checks, one module per group; each check takes the subject and returns its problems."""

from tovplus.testing.conformance.checks.actions import check_actions
from tovplus.testing.conformance.checks.callbacks import check_callbacks
from tovplus.testing.conformance.checks.common import Subject, record_problems
from tovplus.testing.conformance.checks.declarations import check_declarations
from tovplus.testing.conformance.checks.leaks import capture_every_log, check_leaks
from tovplus.testing.conformance.checks.secret_views import check_secrets
from tovplus.testing.conformance.checks.sync import SYNC_SCENARIOS, Scenario, check_sync, check_sync_errors
from tovplus.testing.conformance.checks.validation import check_validation

__all__ = [
    "SYNC_SCENARIOS",
    "Scenario",
    "Subject",
    "capture_every_log",
    "check_actions",
    "check_callbacks",
    "check_declarations",
    "check_leaks",
    "check_secrets",
    "check_sync",
    "check_sync_errors",
    "check_validation",
    "record_problems",
]
