"""Settings, read once from the environment.

Every process (web, worker, release, scripts) calls `get_settings()`; nothing else reads `os.environ`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

SMS_PROVIDERS = ("log",)
# A drained batch is one multi-row INSERT and one claim script; past this, both grow past what a lease covers.
MAX_DRAIN_BATCH = 10_000  # a real provider adds its name here and its sender in app/sms.py


class SettingsError(RuntimeError):
    """A required setting is missing or malformed; raised at start-up, never mid-request."""


class Secret(str):
    """A string that never prints itself, so a secret cannot leak through a log line or a repr."""

    def __repr__(self) -> str:
        return "Secret('**********')"

    def reveal(self) -> str:
        return str.__str__(self)


def _database_url(raw: str) -> str:
    # PaaS add-ons hand out postgres:// or postgresql:// URLs; SQLAlchemy needs the driver named.
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+asyncpg://" + raw[len(prefix) :]
    if raw.startswith("postgresql+asyncpg://"):
        return raw
    raise SettingsError("DATABASE_URL doit être une URL PostgreSQL (postgresql://utilisateur@hôte:port/base).")


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as error:
        raise SettingsError(f"{name} doit être un nombre entier (reçu : {raw!r}).") from error


def _bounded(env: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    value = _int(env, name, default)
    if not low <= value <= high:
        raise SettingsError(f"{name} doit être compris entre {low} et {high} (reçu : {value}).")
    return value


def _fraction(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 1:  # NaN fails this too
        raise SettingsError(f"{name} doit être une fraction entre 0 (exclu) et 1, par exemple 0.8 (reçu : {raw!r}).")
    return value


def _switch(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("on", "off"):
        raise SettingsError(f"{name} doit valoir on ou off (reçu : {raw!r}).")
    return raw == "on"


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    secret_key: Secret
    sentry_dsn: str | None = None
    smtp_url: str = "smtp://127.0.0.1:1025"
    mail_from: str = "Renfort <ne-pas-repondre@renfort.example>"
    base_url: str = "http://127.0.0.1:8000"
    environment: str = "development"
    # Whether ENVIRONMENT was set at all: the seeders of made-up data (app/demo.py) refuse the default.
    environment_declared: bool = False
    ops_token: Secret | None = None
    # Sign-ups accepted per client IP and minute (0 turns the limit off, e.g. for a load test on loopback).
    signup_ip_limit_per_minute: int = 120
    # Above this many queued sign-ups the accept path answers 503 with Retry-After instead of growing without bound.
    signup_backlog_limit: int = 2_000_000
    # Above this many queued application changes, applying answers 503 with Retry-After (same reasoning).
    application_backlog_limit: int = 1_000_000
    # Past this fraction of Redis's maxmemory, the write paths answer 503 with Retry-After instead of filling Redis.
    redis_memory_limit_fraction: float = 0.8
    drain_batch_size: int = 2_000
    # A drain consumer that has not renewed its lease for this long is presumed dead; its batch is drained again.
    drain_lease_seconds: int = 30
    # How many drain consumers may write batches at once (each needs a free worker).
    drain_consumers: int = 4
    mails_per_recipient_per_hour: int = 5
    # E-mails per recipient and budget window, per family, so a flood of one family never holds back another; each
    # defaults to MAILS_PER_RECIPIENT_PER_HOUR (0: no budget). Past it an e-mail waits for the window to end.
    mail_budget_signin: int = 5
    mail_budget_account: int = 5
    mail_budget_application: int = 5
    mail_budget_dispatch: int = 5
    # The SNU's follow-up (agreements, placements, reminders): a tutor or guardian of several young people gets one
    # e-mail per agreement, so 4 × MAILS_PER_RECIPIENT_PER_HOUR unless set.
    mail_budget_youth: int = 20
    mail_budget_window_seconds: int = 3600
    # First wait before an e-mail a server refused is tried again (doubling at each refusal).
    mail_retry_seconds: int = 300
    # How long a sign-in link stays valid; short, since whoever reads the mailbox can use it.
    signin_link_ttl_seconds: int = 900
    # Sign-in requests per client IP and minute (0 = off): past it, a 429 with Retry-After.
    signin_ip_limit_per_minute: int = 20
    # Sign-in requests per e-mail address and hour: past it, the same neutral answer but no e-mail, so the limit
    # neither floods a mailbox nor tells whether the address has an account.
    signin_email_limit_per_hour: int = 5
    # A session ends after this many days without a visit (sliding), and in any case 30 days after sign-in.
    session_idle_days: int = 7
    # How many reverse proxies in front of the web processes append to X-Forwarded-For (0: trust none). Behind a
    # PaaS router set it to 1, or every citizen shares the router's address and its rate limit.
    trusted_proxy_hops: int = 0
    # How long a volunteer has to answer a dispatch proposal before it lapses and its place goes back.
    dispatch_proposal_hours: int = 48
    # An organisation with this many missions validated, and none refused, in the last 12 months publishes its next
    # missions without moderation (0: every mission is moderated unless it comes from a validated template).
    trusted_organisation_missions: int = 3
    # How long an invitation to manage an organisation (a co-manager's, or a new organisation's creator's) lasts.
    invitation_days: int = 7
    # New applications: the first is e-mailed to the organisation at once, the next ones in one digest per window.
    application_digest_minutes: int = 60
    # A pending application untreated this many days gets its organisation one reminder.
    application_reminder_days: int = 7
    # Without activity this long (INACTIVITY_YEARS, or INACTIVITY_DAYS exactly), a person's data is anonymised.
    inactivity_days: int = 3 * 365
    # Who sends text messages: "log" (the default) only logs that one would be sent, by ids, never the number.
    sms_provider: str = "log"
    log_level: str = "INFO"
    # One JSON line per request on the `renfort.access` logger (ACCESS_LOG=on|off), whatever LOG_LEVEL says.
    access_log: bool = True
    # What Sentry files events under: RENFORT_RELEASE, else the PaaS's SOURCE_VERSION, else CONTAINER_VERSION.
    release: str | None = None
    # Where the web processes keep their metrics files (PROMETHEUS_MULTIPROC_DIR; "": the system's temporary folder),
    # one subfolder per server run (app/metrics/process_files.py).
    metrics_dir: str = ""
    # Load shedding (app/switches/board.py): non-essential pages answer 503 once the oldest queued sign-up has waited
    # this long, or a web process's event loop lags this much twice in a row (0 turns either signal off).
    shed_queue_age_seconds: int = 60
    shed_loop_lag_ms: int = 500
    # Who the legal notice (/mentions-legales) names; the contact address is also where barriers and data requests go.
    legal_publisher: str = "Renfort — plateforme publique de bénévolat"
    legal_publisher_address: str = "Adresse de l'éditeur à compléter (LEGAL_PUBLISHER_ADDRESS)"
    legal_director: str = "La directrice ou le directeur du service public qui opère Renfort"
    legal_host: str = "L'hébergeur déclaré par l'opérateur de la plateforme"
    legal_host_address: str = "Adresse de l'hébergeur à compléter (LEGAL_HOST_ADDRESS)"
    legal_contact: str = "contact@renfort.example"
    # Partner feeds (app/partners/feeds): fetched from public addresses only, unless PARTNER_FEEDS_ALLOW_LOOPBACK=on
    # (tests and benchmarks serve their feeds on 127.0.0.1); a feed past these bytes or seconds is refused whole.
    partner_feeds_allow_loopback: bool = False
    partner_feed_max_bytes: int = 100_000_000
    partner_feed_timeout_seconds: int = 120

    @property
    def sync_database_url(self) -> str:
        """The same database for tools that speak libpq-style URLs (asyncpg.connect, psql)."""
        return "postgresql://" + self.database_url.split("://", 1)[1]


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    missing = [name for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY") if not env.get(name, "").strip()]
    if missing:
        raise SettingsError(
            "Variables d'environnement manquantes : "
            + ", ".join(missing)
            + ". Lancez la plateforme avec `./ops/run`, qui les fournit en local, ou définissez-les."
        )
    secret_key = env["SECRET_KEY"].strip()
    if len(secret_key) < 32:
        raise SettingsError("SECRET_KEY doit compter au moins 32 caractères.")
    ops_token = env.get("OPS_TOKEN", "").strip()
    sms_provider = env.get("SMS_PROVIDER", "").strip().lower() or Settings.sms_provider
    if sms_provider not in SMS_PROVIDERS:
        raise SettingsError(f"SMS_PROVIDER doit valoir {' ou '.join(SMS_PROVIDERS)} (reçu : {sms_provider!r}).")
    per_hour = _int(env, "MAILS_PER_RECIPIENT_PER_HOUR", Settings.mails_per_recipient_per_hour)
    return Settings(
        database_url=_database_url(env["DATABASE_URL"].strip()),
        redis_url=env["REDIS_URL"].strip(),
        secret_key=Secret(secret_key),
        sentry_dsn=env.get("SENTRY_DSN", "").strip() or None,
        smtp_url=env.get("SMTP_URL", "").strip() or Settings.smtp_url,
        mail_from=env.get("MAIL_FROM", "").strip() or Settings.mail_from,
        base_url=(env.get("BASE_URL", "").strip() or Settings.base_url).rstrip("/"),
        environment=env.get("ENVIRONMENT", "").strip() or Settings.environment,
        environment_declared=bool(env.get("ENVIRONMENT", "").strip()),
        ops_token=Secret(ops_token) if ops_token else None,
        signup_ip_limit_per_minute=_int(env, "SIGNUP_IP_LIMIT_PER_MINUTE", Settings.signup_ip_limit_per_minute),
        signup_backlog_limit=_int(env, "SIGNUP_BACKLOG_LIMIT", Settings.signup_backlog_limit),
        application_backlog_limit=_int(env, "APPLICATION_BACKLOG_LIMIT", Settings.application_backlog_limit),
        redis_memory_limit_fraction=_fraction(
            env, "REDIS_MEMORY_LIMIT_FRACTION", Settings.redis_memory_limit_fraction
        ),
        drain_batch_size=_bounded(env, "DRAIN_BATCH_SIZE", Settings.drain_batch_size, 1, MAX_DRAIN_BATCH),
        drain_lease_seconds=_bounded(env, "DRAIN_LEASE_SECONDS", Settings.drain_lease_seconds, 2, 3_600),
        drain_consumers=_bounded(env, "DRAIN_CONSUMERS", Settings.drain_consumers, 1, 64),
        mails_per_recipient_per_hour=per_hour,
        mail_budget_signin=_int(env, "MAIL_BUDGET_SIGNIN", per_hour),
        mail_budget_account=_int(env, "MAIL_BUDGET_ACCOUNT", per_hour),
        mail_budget_application=_int(env, "MAIL_BUDGET_APPLICATION", per_hour),
        mail_budget_dispatch=_int(env, "MAIL_BUDGET_DISPATCH", per_hour),
        mail_budget_youth=_int(env, "MAIL_BUDGET_YOUTH", 4 * per_hour),
        mail_budget_window_seconds=max(1, _int(env, "MAIL_BUDGET_WINDOW_SECONDS", Settings.mail_budget_window_seconds)),
        mail_retry_seconds=max(1, _int(env, "MAIL_RETRY_SECONDS", Settings.mail_retry_seconds)),
        signin_link_ttl_seconds=_int(env, "SIGNIN_LINK_TTL_SECONDS", Settings.signin_link_ttl_seconds),
        signin_ip_limit_per_minute=_int(env, "SIGNIN_IP_LIMIT_PER_MINUTE", Settings.signin_ip_limit_per_minute),
        signin_email_limit_per_hour=_int(env, "SIGNIN_EMAIL_LIMIT_PER_HOUR", Settings.signin_email_limit_per_hour),
        session_idle_days=_int(env, "SESSION_IDLE_DAYS", Settings.session_idle_days),
        trusted_proxy_hops=_int(env, "TRUSTED_PROXY_HOPS", Settings.trusted_proxy_hops),
        dispatch_proposal_hours=_int(env, "DISPATCH_PROPOSAL_HOURS", Settings.dispatch_proposal_hours),
        trusted_organisation_missions=_bounded(env, "TRUSTED_ORGANISATION_MISSIONS",
                                               Settings.trusted_organisation_missions, 0, 1_000),
        invitation_days=_bounded(env, "INVITATION_DAYS", Settings.invitation_days, 1, 90),
        application_digest_minutes=_bounded(env, "APPLICATION_DIGEST_MINUTES", Settings.application_digest_minutes,
                                            1, 24 * 60),
        application_reminder_days=_bounded(env, "APPLICATION_REMINDER_DAYS", Settings.application_reminder_days, 1, 90),
        inactivity_days=_bounded(env, "INACTIVITY_DAYS", 365 * _bounded(env, "INACTIVITY_YEARS", 3, 1, 10), 31,
                                 3_650),
        sms_provider=sms_provider,
        log_level=env.get("LOG_LEVEL", "").strip().upper() or Settings.log_level,
        access_log=_switch(env, "ACCESS_LOG", Settings.access_log),
        release=next((value for name in ("RENFORT_RELEASE", "SOURCE_VERSION", "CONTAINER_VERSION")
                      if (value := env.get(name, "").strip())), None),
        metrics_dir=env.get("PROMETHEUS_MULTIPROC_DIR", "").strip(),
        shed_queue_age_seconds=_bounded(env, "SHED_QUEUE_AGE_SECONDS", Settings.shed_queue_age_seconds, 0, 86_400),
        shed_loop_lag_ms=_bounded(env, "SHED_LOOP_LAG_MS", Settings.shed_loop_lag_ms, 0, 60_000),
        legal_publisher=env.get("LEGAL_PUBLISHER", "").strip() or Settings.legal_publisher,
        legal_publisher_address=env.get("LEGAL_PUBLISHER_ADDRESS", "").strip() or Settings.legal_publisher_address,
        legal_director=env.get("LEGAL_DIRECTOR", "").strip() or Settings.legal_director,
        legal_host=env.get("LEGAL_HOST", "").strip() or Settings.legal_host,
        legal_host_address=env.get("LEGAL_HOST_ADDRESS", "").strip() or Settings.legal_host_address,
        legal_contact=env.get("LEGAL_CONTACT", "").strip() or Settings.legal_contact,
        partner_feeds_allow_loopback=_switch(env, "PARTNER_FEEDS_ALLOW_LOOPBACK",
                                             Settings.partner_feeds_allow_loopback),
        partner_feed_max_bytes=_bounded(env, "PARTNER_FEED_MAX_BYTES", Settings.partner_feed_max_bytes, 1_000,
                                        2_000_000_000),
        partner_feed_timeout_seconds=_bounded(env, "PARTNER_FEED_TIMEOUT_SECONDS",
                                              Settings.partner_feed_timeout_seconds, 1, 3_600),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
