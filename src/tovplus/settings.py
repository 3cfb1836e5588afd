"""The one settings object. Every value comes from a ``TOVPLUS_`` environment variable.

Use :func:`get_settings`; it is cached per process. The README lists every setting.
"""

from __future__ import annotations

import ipaddress
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tovplus.errors import ConfigurationError

Delays = Annotated[tuple[float, ...], NoDecode]
OAuthClients = Annotated[dict[str, "OAuthClientSetting"], NoDecode]
Proxies = Annotated[tuple[str, ...], NoDecode]


#: The longest delay a retry schedule may hold (30 days): longer ones are surely a typo.
MAX_DELAY_SECONDS = 30 * 86_400


def _parse_delays(value: object) -> object:
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not parts:
            raise ValueError("give at least one number of seconds, e.g. 30,120,600")
        delays = []
        for part in parts:
            try:
                delays.append(float(part))
            except ValueError:
                raise ValueError(f"{part[:20]!r} is not a number of seconds; use e.g. 30,120,600") from None
        return tuple(delays)
    return value


def _parse_proxies(value: object) -> object:
    """``"10.0.0.1, 10.1.0.0/16"`` as normalised addresses and networks (``""``: none)."""
    items = [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        return value
    proxies = []
    for item in items:
        text = str(item)
        try:
            proxies.append(
                str(ipaddress.ip_network(text, strict=False) if "/" in text else ipaddress.ip_address(text))
            )
        except ValueError:
            raise ValueError(
                f"{text[:50]!r} is not an IP address or network; use e.g. 127.0.0.1,10.0.0.0/8"
            ) from None
    return tuple(proxies)


class OAuthClientSetting(BaseModel):
    """One ``oauth2`` adapter's client, as ``TOVPLUS_OAUTH_CLIENTS`` gives it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client_id: str = Field(min_length=1, max_length=500)
    client_secret: str = Field(min_length=1, max_length=2000, repr=False)


def _parse_oauth_clients(value: object) -> object:
    """``{"guest_messaging": {"client_id": "...", "client_secret": "..."}}`` (JSON; ``""``: none).

    Errors never repeat the value: it holds secrets.
    """
    if not isinstance(value, str):
        return value
    if not value.strip():
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        raise ValueError(
            'must be a JSON object, e.g. {"guest_messaging": {"client_id": "...", "client_secret": "..."}}'
        ) from None
    if not isinstance(parsed, dict):
        raise ValueError("must be a JSON object of integration keys")
    return parsed


class Settings(BaseSettings):
    """Process configuration. Invalid values stop the process with one clear line."""

    model_config = SettingsConfigDict(env_prefix="TOVPLUS_", extra="ignore", frozen=True, allow_inf_nan=False)

    environment: Literal["development", "production", "test"] = "development"
    data_dir: Path = Path("./var")
    #: SQLAlchemy URL; default ``sqlite:///<data_dir>/tovplus.db``.
    database_url: str | None = None
    #: Huey storage: ``sqlite:///path`` (default ``<data_dir>/queue.db``), ``postgresql://…``, ``redis://…``,
    #: or ``memory://`` (tests).
    queue_url: str | None = None
    #: Comma-separated ``key_id:base64url-32-bytes``; the first encrypts, all decrypt.
    #: Default: a key file generated in ``data_dir`` on first start.
    secret_keys: str | None = Field(default=None, repr=False)
    allow_private_urls: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    #: OpenTelemetry tracing (needs the ``[otel]`` extra); off imports nothing of it.
    otel_enabled: bool = False
    #: Where finished spans go: ``console`` (stdout), ``memory`` (tests), ``none`` (dropped).
    otel_exporter: Literal["none", "console", "memory"] = "console"
    #: SQLite durability: NORMAL survives a process crash; FULL also survives power loss.
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_callback_body_bytes: int = Field(default=65_536, ge=256)
    sync_retry_delays: Delays = (30.0, 120.0, 600.0)
    webhook_retry_delays: Delays = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0)
    #: Seconds between attempts of an action run after a transient failure (then it fails).
    action_retry_delays: Delays = (10.0, 60.0, 300.0)
    sync_interval_seconds: int | None = Field(default=None, ge=1)
    #: After this many failed runs in a row a connection's schedule pauses (a manual sync resumes it).
    sync_pause_after_failures: int = Field(default=10, ge=1)
    run_worker_in_serve: bool = True
    #: How long a claimed sync run or delivery stays leased before the reaper takes it back.
    lease_seconds: float = Field(default=60.0, gt=0)
    scheduler_tick_seconds: float = Field(default=5.0, gt=0)
    #: Timeout of each HTTP request a sync makes to a partner (connect: at most 5 s).
    sync_http_timeout_seconds: float = Field(default=10.0, gt=0)
    #: OAuth2: an access token expiring within this many seconds is refreshed before use.
    oauth_refresh_margin_seconds: float = Field(default=120.0, ge=0, le=86_400)
    #: OAuth2: timeout of each call to a partner's token endpoint (connect: at most 5 s).
    oauth_token_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    #: OAuth2: how long one process holds a grant's refresh lease (longer than the token timeout).
    oauth_refresh_lease_seconds: float = Field(default=30.0, gt=0, le=3600)
    #: Threads that run queued work in a ``worker`` process (and inside ``serve``).
    worker_threads: int = Field(default=4, ge=1, le=64)
    #: Sync runs one worker process holds at once (``tovplus.worker.engine``): partner calls run on a
    #: bounded I/O pool of this size. 0 runs each sync end to end on a queue thread (the old way).
    sync_concurrency: int = Field(default=128, ge=0, le=1024)
    #: Inbound callbacks a connection may send per minute before 429.
    callback_rate_per_minute: int = Field(default=6000, ge=1)
    public_base_url: str = "http://127.0.0.1:8000"
    # Retention (``tovplus.services.retention``): days a table's rows are kept; 0 keeps them for ever.
    #: Callback delivery ids: a repeat within this window has no second effect.
    callback_dedup_days: float = Field(default=7.0, ge=0, le=36_500)
    activity_retention_days: float = Field(default=180.0, ge=0, le=36_500)
    #: Finished webhook deliveries, with their attempts.
    webhook_retention_days: float = Field(default=30.0, ge=0, le=36_500)
    #: Finished sync runs; the newest ``sync_runs_kept_per_connection`` of each connection always stay.
    sync_run_retention_days: float = Field(default=30.0, ge=0, le=36_500)
    sync_runs_kept_per_connection: int = Field(default=20, ge=0, le=10_000)
    #: Finished action runs; the newest ``action_runs_kept_per_connection`` of each connection stay.
    action_run_retention_days: float = Field(default=30.0, ge=0, le=36_500)
    action_runs_kept_per_connection: int = Field(default=20, ge=0, le=10_000)
    #: Dispatched platform events (the outbox of guest changes); undispatched ones stay however old.
    platform_event_retention_days: float = Field(default=7.0, ge=0, le=36_500)
    #: Seconds between pruning passes in the leading process (0: never; ``tovplus db prune`` still works).
    prune_interval_seconds: float = Field(default=300.0, ge=0)
    #: Rows per delete (each its own short write transaction) and the time one tick may spend pruning.
    prune_batch_size: int = Field(default=200, ge=1, le=10_000)
    prune_tick_budget_seconds: float = Field(default=0.5, gt=0, le=60)
    #: Addresses or networks of reverse proxies whose ``X-Forwarded-For`` / ``X-Forwarded-Proto``
    #: are believed (comma-separated). Default none: the connecting address is the client's.
    trusted_proxies: Proxies = ()
    #: The operator's OAuth client of each ``oauth2`` adapter (JSON, see ``OAuthClientSetting``);
    #: stored sealed at start, unless ``tovplus oauth set-client`` set that adapter's client.
    oauth_clients: OAuthClients = Field(default_factory=dict, repr=False)

    @field_validator("sync_retry_delays", "webhook_retry_delays", "action_retry_delays", mode="before")
    @classmethod
    def _delays(cls, value: object) -> object:
        return _parse_delays(value)

    @field_validator("oauth_clients", mode="before")
    @classmethod
    def _oauth_clients(cls, value: object) -> object:
        return _parse_oauth_clients(value)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: object) -> object:
        return _parse_proxies(value)

    @field_validator("sync_retry_delays", "webhook_retry_delays", "action_retry_delays")
    @classmethod
    def _non_negative(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value:
            raise ValueError("give at least one number of seconds, e.g. 30,120,600")
        if any(not math.isfinite(d) for d in value):
            raise ValueError("delays must be finite numbers of seconds")
        if any(d < 0 for d in value):
            raise ValueError("delays must not be negative")
        if any(d > MAX_DELAY_SECONDS for d in value):
            raise ValueError(f"delays must be at most {MAX_DELAY_SECONDS} seconds (30 days)")
        return value

    @field_validator("oauth_refresh_lease_seconds")
    @classmethod
    def _lease_outlasts_token_call(cls, value: float, info: ValidationInfo) -> float:
        timeout = info.data.get("oauth_token_timeout_seconds")
        if timeout is not None and value <= timeout:
            raise ValueError(
                f"must be longer than TOVPLUS_OAUTH_TOKEN_TIMEOUT_SECONDS ({timeout:g}): "
                "a refresh lease must outlast the token call it covers"
            )
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'tovplus.db').resolve()}"

    @property
    def resolved_queue_url(self) -> str:
        return self.queue_url or f"sqlite:///{(self.data_dir / 'queue.db').resolve()}"

    @property
    def secure_cookies(self) -> bool:
        return self.environment == "production"


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each bad variable and why."""
    parts = []
    for err in exc.errors():
        name = "TOVPLUS_" + "_".join(str(p) for p in err["loc"][:1]).upper()
        message = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{name}: {message}")
    return " ".join(("invalid settings: " + "; ".join(parts)).split())


def load_settings() -> Settings:
    """Read settings from the environment; raise :class:`ConfigurationError` with one clear line."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigurationError(describe_validation_error(exc)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings (cached; tests call ``get_settings.cache_clear()``)."""
    return load_settings()
