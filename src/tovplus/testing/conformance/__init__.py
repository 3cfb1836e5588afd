"""The adapter conformance suite: what every adapter must get right, checked the same way for all.

Run it with one line, in a test module::

    class TestMyAdapter(AdapterConformance):
        adapter = MyAdapter

or from a plain test function, ``assert_conforms(MyAdapter)``, or from the shell,
``tovplus adapters check my_adapter``. Each check is also a function of
:func:`check_adapter`'s report, so a failure names the check and what went wrong.

Inside: ``report`` (the results and their text), ``samples`` (valid samples derived from the
declarations), ``checks/`` (one module per group of checks), ``runner`` (runs them in order)
and ``pytest_base`` (:class:`AdapterConformance`).
"""

from tovplus.testing.conformance.checks import SYNC_SCENARIOS, record_problems
from tovplus.testing.conformance.pytest_base import AdapterConformance
from tovplus.testing.conformance.report import CHECKS, MAX_PROBLEMS_SHOWN, CheckResult, ConformanceReport
from tovplus.testing.conformance.runner import DEFAULT_EXAMPLES, assert_conforms, check_adapter
from tovplus.testing.conformance.samples import SampleError, derive_sample_config, derive_sample_secrets

__all__ = [
    "CHECKS",
    "DEFAULT_EXAMPLES",
    "MAX_PROBLEMS_SHOWN",
    "SYNC_SCENARIOS",
    "AdapterConformance",
    "CheckResult",
    "ConformanceReport",
    "SampleError",
    "assert_conforms",
    "check_adapter",
    "derive_sample_config",
    "derive_sample_secrets",
    "record_problems",
]
