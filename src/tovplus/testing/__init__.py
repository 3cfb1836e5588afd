"""The test kit for adapter authors.

The conformance suite, in one line of a test module::

    from tovplus.testing import AdapterConformance

    class TestMyAdapter(AdapterConformance):
        adapter = MyAdapter

or ``assert_conforms(MyAdapter)`` in a test function, or ``tovplus adapters check my_adapter``
in a shell. It checks that

* the declarations are consistent (the registry would load the adapter);
* no declared secret field, and no secret value, shows in ``describe()``, ``public_config()``,
  validation messages, sync results, sync errors or logs;
* validation returns field errors and never raises, for generated bad configs;
* callback mapping accepts the sample payload and rejects junk with ``CallbackRejected``
  carrying field issues, never anything else;
* sync maps partner failures to the typed errors: 401/403 to ``CredentialsRejected``,
  5xx, timeouts and refused connections to ``PartnerUnavailable``, without retrying on its own;
* nothing a hook logs (any logger, DEBUG), returns, raises or keeps holds a secret value or an
  access or refresh token (canary values, through the fake authorization server for OAuth2);
* each declared action does the same, sends the run's id as ``Idempotency-Key``, and carries no
  secret in its result, its errors or the logs (:func:`run_action` runs one in your own tests).

Give ``sample_config``, ``sample_secrets``, ``sample_callback`` and a ``partner()`` that a
sync succeeds against to make the checks sharper; without them, samples are derived from the
field declarations.

To test your own behaviour, script the partner's API with :class:`FakePartner` and run the
hooks as the framework does with :func:`run_sync`, :func:`run_callback`, :func:`run_check` and
:func:`run_validation`. An OAuth2 adapter is driven through a :class:`FakeAuthorizationServer`
(short-lived access tokens, rotating refresh tokens refused on reuse, the partner API behind it)
and a :class:`MemoryTokenSource`; :func:`oauth_context` builds its contexts by hand. Bad inputs
are generated with Hypothesis when it is installed (bounded and derandomized, so runs are fast
and reproducible).
"""

from tovplus.testing.actions import RUN_ID, action_context, run_action
from tovplus.testing.conformance import (
    CHECKS,
    DEFAULT_EXAMPLES,
    AdapterConformance,
    CheckResult,
    ConformanceReport,
    SampleError,
    assert_conforms,
    check_adapter,
    derive_sample_config,
    derive_sample_secrets,
    record_problems,
)
from tovplus.testing.fake_partner import Answer, FakePartner, Replies, Reply
from tovplus.testing.hooks import (
    callback_context,
    check_context,
    default_scope,
    records_by_id,
    run_callback,
    run_check,
    run_sync,
    run_validation,
    sync_context,
)
from tovplus.testing.oauth import FakeAuthorizationServer, IssuedTokens, MemoryTokenSource, oauth_http
from tovplus.testing.oauth_context import oauth_context

__all__ = [
    "CHECKS",
    "DEFAULT_EXAMPLES",
    "RUN_ID",
    "AdapterConformance",
    "Answer",
    "CheckResult",
    "ConformanceReport",
    "FakeAuthorizationServer",
    "FakePartner",
    "IssuedTokens",
    "MemoryTokenSource",
    "Replies",
    "Reply",
    "SampleError",
    "action_context",
    "assert_conforms",
    "callback_context",
    "check_adapter",
    "check_context",
    "default_scope",
    "derive_sample_config",
    "derive_sample_secrets",
    "oauth_context",
    "oauth_http",
    "record_problems",
    "records_by_id",
    "run_action",
    "run_callback",
    "run_check",
    "run_sync",
    "run_validation",
    "sync_context",
]
