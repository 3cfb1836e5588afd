"""The conformance suite as pytest tests: subclass :class:`AdapterConformance` in a test module.

Nothing is registered with pytest: it collects the subclass's ``test_*`` methods like any
other test class, and a skipped check becomes a pytest skip.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from tovplus.integrations.contract import Adapter
from tovplus.testing.conformance.runner import DEFAULT_EXAMPLES, check_adapter
from tovplus.testing.conformance.samples import NOT_GIVEN
from tovplus.testing.fake_partner import FakePartner


class AdapterConformance:
    """Subclass in a test module to run the conformance suite as pytest tests (one per check).

    ::

        class TestCateringAdapter(AdapterConformance):
            adapter = CateringAdapter
            sample_config = {"kitchen_id": "k-1", "api_base_url": "https://api.example.com"}
            sample_secrets = {"api_key": "ck_test_0123456789"}
            sample_callback = {"type": "menu.confirmed", ...}

            def partner(self) -> FakePartner:      # optional: a partner a sync succeeds against
                return FakePartner({...})

    Only ``adapter`` is required; samples are derived from the declarations when omitted.
    """

    adapter: ClassVar[Adapter | type[Adapter]]
    sample_config: ClassVar[Mapping[str, Any] | None] = None
    sample_secrets: ClassVar[Mapping[str, str] | None] = None
    sample_callback: ClassVar[Any] = NOT_GIVEN
    examples: ClassVar[int] = DEFAULT_EXAMPLES

    def partner(self) -> FakePartner | None:
        """Override to return a scripted partner that a sync succeeds against."""
        return None

    def _run(self, name: str) -> None:
        if getattr(self, "adapter", None) is None:
            raise AssertionError(f"{type(self).__name__}: set `adapter = YourAdapter` on the class")
        partner: Callable[[], FakePartner] | None = None
        if self.partner() is not None:

            def fresh() -> FakePartner:
                made = self.partner()
                assert made is not None
                return made

            partner = fresh
        report = check_adapter(
            self.adapter,
            config=self.sample_config,
            secrets=self.sample_secrets,
            callback=self.sample_callback,
            partner=partner,
            examples=self.examples,
            only=[name],
        )
        result = next((r for r in report.results if r.name == name), report.results[0])
        if not result.passed:
            raise AssertionError(f"adapter {report.integration_key!r}:\n{result.format()}")
        if result.skipped:
            _skip(result.skipped)

    def test_declarations(self) -> None:
        self._run("declarations")

    def test_secrets_stay_out_of_public_views(self) -> None:
        self._run("secrets")

    def test_validation_returns_field_errors_and_never_raises(self) -> None:
        self._run("validation")

    def test_callbacks_reject_junk_with_field_errors(self) -> None:
        self._run("callbacks")

    def test_sync_maps_partner_errors(self) -> None:
        self._run("sync_errors")

    def test_sync_against_scripted_partner(self) -> None:
        self._run("sync")

    def test_no_token_or_secret_leaks(self) -> None:
        self._run("leaks")


def _skip(reason: str) -> None:
    try:
        import pytest
    except ImportError:  # not under pytest: a skipped check simply passes
        return
    pytest.skip(reason)
