"""The integrations framework core: the adapter contract, fields and validation,
the registry, payload helpers and redaction. It imports no web or database code.
"""

from tovplus.errors import (
    CallbackRejected,
    CredentialsRejected,
    DriftDetected,
    FieldIssue,
    PartnerUnavailable,
)
from tovplus.integrations.actions import (
    ActionContext,
    ActionResult,
    ActionSpec,
    EventData,
    GuestData,
    OccasionData,
    PlatformData,
)
from tovplus.integrations.contract import (
    CONTRACT_VERSION,
    Adapter,
    CallbackAuth,
    CallbackContext,
    CallbackResult,
    Direction,
    Health,
    Mode,
    RecordUpsert,
    Scope,
    ScopeType,
    SyncContext,
    SyncResult,
    ValidationContext,
    ValidationResult,
    validate_connection,
)
from tovplus.integrations.fields import Field, FieldType
from tovplus.integrations.http import busy as partner_busy
from tovplus.integrations.http import unreachable as partner_unreachable
from tovplus.integrations.payloads import PayloadReader, format_timestamp, parse_timestamp
from tovplus.integrations.politeness import PartnerLimits
from tovplus.integrations.registry import AdapterRegistry, default_registry
from tovplus.integrations.sync_state import RecordDelete, RunSuperseded
from tovplus.integrations.wording import Wording

__all__ = [
    "CONTRACT_VERSION",
    "ActionContext",
    "ActionResult",
    "ActionSpec",
    "Adapter",
    "AdapterRegistry",
    "CallbackAuth",
    "CallbackContext",
    "CallbackRejected",
    "CallbackResult",
    "CredentialsRejected",
    "Direction",
    "DriftDetected",
    "EventData",
    "Field",
    "FieldIssue",
    "FieldType",
    "GuestData",
    "Health",
    "Mode",
    "OccasionData",
    "PartnerLimits",
    "PartnerUnavailable",
    "PayloadReader",
    "PlatformData",
    "RecordDelete",
    "RecordUpsert",
    "RunSuperseded",
    "Scope",
    "ScopeType",
    "SyncContext",
    "SyncResult",
    "ValidationContext",
    "ValidationResult",
    "Wording",
    "default_registry",
    "format_timestamp",
    "parse_timestamp",
    "partner_busy",
    "partner_unreachable",
    "validate_connection",
]
