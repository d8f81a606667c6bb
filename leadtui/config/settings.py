"""Every setting declared once in :data:`FIELDS`, the :class:`Settings` they make, and
:func:`load`: a TOML file, overridden by ``LEADTUI_*`` environment names, overridden by flags.
"""

from __future__ import annotations

import dataclasses
import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leadtui.config.files import _lookup, read_file
from leadtui.config.keys import ApiKey, _parse_api_keys_env, _parse_api_keys_file
from leadtui.config.notify import (
    Autoreply,
    NotifyTarget,
    _parse_autoreply,
    _parse_notify,
    _to_clock,
)
from leadtui.config.values import (
    DEFAULT_TIMEZONE,
    ConfigError,
    Secret,
    _choice,
    _to_bool,
    _to_db,
    _to_float,
    _to_int,
    _to_keymap,
    _to_limit,
    _to_list,
    _to_secret,
    _to_str,
    _to_timezone,
    default_config_path,
    default_db_url,
    redact_url,
)
from leadtui.templates import DEFAULT, Template, from_config


@dataclass(frozen=True, slots=True)
class Field:
    attr: str  # attribute on Settings
    key: str  # dotted TOML key: "imap.host"
    env: str | None  # LEADTUI_* name, or None when only the file sets it
    convert: Callable[[Any], Any]
    help: str


FIELDS: tuple[Field, ...] = (
    Field("db", "db", "LEADTUI_DB", _to_db, "database: a file path, sqlite:///path or postgresql://user@host/dbname"),
    Field("imap_host", "imap.host", "LEADTUI_IMAP_HOST", _to_str, "IMAP server, e.g. imap.gmail.com"),
    Field("imap_port", "imap.port", "LEADTUI_IMAP_PORT", _to_int, "IMAP port (993 for ssl, 143 otherwise)"),
    Field("imap_user", "imap.user", "LEADTUI_IMAP_USER", _to_str, "mailbox login"),
    Field("imap_password", "imap.password", "LEADTUI_IMAP_PASSWORD", _to_secret, "password or Gmail app password"),
    Field("imap_security", "imap.security", "LEADTUI_IMAP_SECURITY", _choice("ssl", "starttls", "plain"), "ssl | starttls | plain"),
    Field("imap_folder", "imap.folder", "LEADTUI_IMAP_FOLDER", _to_str, "folder to watch"),
    Field("imap_ca_file", "imap.ca_file", "LEADTUI_IMAP_CA_FILE", _to_str, "CA bundle for a self-signed server"),
    Field("imap_senders", "imap.senders", "LEADTUI_IMAP_SENDERS", _to_list, "sender domains that carry leads"),
    Field("imap_backfill_days", "imap.backfill_days", "LEADTUI_IMAP_BACKFILL_DAYS", _to_int, "days of mail read on the first run"),
    Field("imap_poll_seconds", "imap.poll_seconds", "LEADTUI_IMAP_POLL_SECONDS", _to_float, "poll interval when the server has no IDLE"),
    Field("imap_oauth_client_id", "imap.oauth_client_id", "LEADTUI_IMAP_OAUTH_CLIENT_ID", _to_str, "XOAUTH2 client id"),
    Field("imap_oauth_client_secret", "imap.oauth_client_secret", "LEADTUI_IMAP_OAUTH_CLIENT_SECRET", _to_secret, "XOAUTH2 client secret"),
    Field("imap_oauth_refresh_token", "imap.oauth_refresh_token", "LEADTUI_IMAP_OAUTH_REFRESH_TOKEN", _to_secret, "XOAUTH2 refresh token"),
    Field("imap_oauth_token_url", "imap.oauth_token_url", "LEADTUI_IMAP_OAUTH_TOKEN_URL", _to_str, "XOAUTH2 token endpoint"),
    Field("http_listen", "http.listen", "LEADTUI_HTTP_LISTEN", _to_str, "host:port of the HTTP ingest, or off"),
    Field("push_token", "http.push_token", "LEADTUI_PUSH_TOKEN", _to_secret, "the secret path token for IndiaMART push"),
    Field("twilio_auth_token", "http.twilio_auth_token", "LEADTUI_TWILIO_AUTH_TOKEN", _to_secret, "Twilio auth token (WhatsApp)"),
    Field("meta_app_secret", "http.meta_app_secret", "LEADTUI_META_APP_SECRET", _to_secret, "Meta app secret (WhatsApp Cloud API)"),
    Field("meta_verify_token", "http.meta_verify_token", "LEADTUI_META_VERIFY_TOKEN", _to_secret, "Meta webhook verify token"),
    Field("http_rate_per_minute", "http.rate_per_minute", "LEADTUI_HTTP_RATE_PER_MINUTE", _to_int, "requests a key may make per minute"),
    Field("http_public_url", "http.public_url", "LEADTUI_HTTP_PUBLIC_URL", _to_str, "the public URL of the ingest (for Twilio signatures)"),
    Field("indiamart_key", "indiamart.key", "LEADTUI_INDIAMART_KEY", _to_secret, "IndiaMART CRM API key"),
    Field("indiamart_url", "indiamart.url", "LEADTUI_INDIAMART_URL", _to_str, "IndiaMART CRM API base URL"),
    Field("pull_backfill_days", "indiamart.backfill_days", "LEADTUI_INDIAMART_BACKFILL_DAYS", _to_int, "days fetched on the first pull (max 365)"),
    Field("pull_interval_seconds", "indiamart.interval_seconds", "LEADTUI_INDIAMART_INTERVAL", _to_float, "seconds between pulls (min 300 against IndiaMART)"),
    Field("meta_leads_app_secret", "meta.app_secret", "LEADTUI_META_LEADS_APP_SECRET", _to_secret, "Meta app secret for lead ads webhooks (default: the WhatsApp one, LEADTUI_META_APP_SECRET)"),
    Field("meta_leads_verify_token", "meta.verify_token", "LEADTUI_META_LEADS_VERIFY_TOKEN", _to_secret, "lead ads webhook verify token (default: LEADTUI_META_VERIFY_TOKEN)"),
    Field("meta_page_token", "meta.page_token", "LEADTUI_META_PAGE_TOKEN", _to_secret, "Facebook Page access token that reads lead ads (leads_retrieval)"),
    Field("meta_form_ids", "meta.form_ids", "LEADTUI_META_FORM_IDS", _to_list, "lead form ids to backfill (forms seen in notifications are added)"),
    Field("meta_graph_url", "meta.graph_url", "LEADTUI_META_GRAPH_URL", _to_str, "Graph API base URL"),
    Field("meta_graph_version", "meta.graph_version", "LEADTUI_META_GRAPH_VERSION", _to_str, "Graph API version, e.g. v26.0"),
    Field("meta_backfill_days", "meta.backfill_days", "LEADTUI_META_BACKFILL_DAYS", _to_int, "days of lead ads fetched on the first backfill (max 90)"),
    Field("gmail_enabled", "gmail.enable", "LEADTUI_GMAIL_ENABLE", _to_bool, "read a Gmail mailbox through the Gmail API (for domains where IMAP is off)"),
    Field("gmail_label", "gmail.label", "LEADTUI_GMAIL_LABEL", _to_str, "the Gmail label id to read (INBOX, or a label's id)"),
    Field("gmail_topic", "gmail.topic", "LEADTUI_GMAIL_TOPIC", _to_str, "Pub/Sub topic for push: projects/PROJECT/topics/TOPIC (empty: poll)"),
    Field("gmail_push_token", "gmail.push_token", "LEADTUI_GMAIL_PUSH_TOKEN", _to_secret, "the secret path token of the push URL /api/webhooks/gmail/<token>"),
    Field("gmail_poll_seconds", "gmail.poll_seconds", "LEADTUI_GMAIL_POLL_SECONDS", _to_float, "seconds between history checks without push"),
    Field("gmail_client_id", "gmail.client_id", "LEADTUI_GMAIL_CLIENT_ID", _to_str, "OAuth client id (default: LEADTUI_IMAP_OAUTH_CLIENT_ID)"),
    Field("gmail_client_secret", "gmail.client_secret", "LEADTUI_GMAIL_CLIENT_SECRET", _to_secret, "OAuth client secret (default: LEADTUI_IMAP_OAUTH_CLIENT_SECRET)"),
    Field("gmail_refresh_token", "gmail.refresh_token", "LEADTUI_GMAIL_REFRESH_TOKEN", _to_secret, "OAuth refresh token with the gmail.readonly scope (default: LEADTUI_IMAP_OAUTH_REFRESH_TOKEN)"),
    Field("gmail_token_url", "gmail.token_url", "LEADTUI_GMAIL_TOKEN_URL", _to_str, "OAuth token endpoint (default: Google's)"),
    Field("gmail_api_url", "gmail.api_url", "LEADTUI_GMAIL_API_URL", _to_str, "Gmail API base URL (tests point it at a local server)"),
    Field("justdial_token", "justdial.token", "LEADTUI_JUSTDIAL_TOKEN", _to_secret, "the secret path token for JustDial's lead push: /api/justdial/<token>"),
    Field("tradeindia_userid", "tradeindia.userid", "LEADTUI_TRADEINDIA_USERID", _to_str, "TradeIndia API userid (My Inquiry API page)"),
    Field("tradeindia_profile_id", "tradeindia.profile_id", "LEADTUI_TRADEINDIA_PROFILE_ID", _to_str, "TradeIndia API profile_id"),
    Field("tradeindia_key", "tradeindia.key", "LEADTUI_TRADEINDIA_KEY", _to_secret, "TradeIndia inquiry API key"),
    Field("tradeindia_url", "tradeindia.url", "LEADTUI_TRADEINDIA_URL", _to_str, "TradeIndia inquiry API URL"),
    Field("tradeindia_backfill_days", "tradeindia.backfill_days", "LEADTUI_TRADEINDIA_BACKFILL_DAYS", _to_int, "days fetched on the first TradeIndia pull (max 90)"),
    Field("tradeindia_interval_seconds", "tradeindia.interval_seconds", "LEADTUI_TRADEINDIA_INTERVAL", _to_float, "seconds between TradeIndia pulls (min 1800)"),
    Field("exportersindia_key", "exportersindia.key", "LEADTUI_EXPORTERSINDIA_KEY", _to_secret, "ExportersIndia inquiry API key"),
    Field("exportersindia_email", "exportersindia.email", "LEADTUI_EXPORTERSINDIA_EMAIL", _to_str, "the ExportersIndia account's email"),
    Field("exportersindia_url", "exportersindia.url", "LEADTUI_EXPORTERSINDIA_URL", _to_str, "ExportersIndia inquiry API URL"),
    Field("exportersindia_backfill_days", "exportersindia.backfill_days", "LEADTUI_EXPORTERSINDIA_BACKFILL_DAYS", _to_int, "days fetched on the first ExportersIndia pull (max 90)"),
    Field("exportersindia_interval_seconds", "exportersindia.interval_seconds", "LEADTUI_EXPORTERSINDIA_INTERVAL", _to_float, "seconds between ExportersIndia pulls (min 900)"),
    Field("bell", "ui.bell", "LEADTUI_BELL", _to_bool, "ring the terminal bell on new leads"),
    Field("desktop_notify", "ui.desktop_notify", "LEADTUI_DESKTOP_NOTIFY", _to_bool, "OSC 777/9 desktop notifications"),
    Field("highlight_seconds", "ui.highlight_seconds", None, _to_float, "how long new rows stay highlighted"),
    Field("keys", "ui.keys", None, _to_keymap, "key remapping: action = key"),
    Field("team_members", "team.members", "LEADTUI_TEAM", _to_list, "the people who work these leads (login names), for the owner prompt"),
    Field("timezone", "ui.timezone", "LEADTUI_TIMEZONE", _to_timezone, "time zone of the times shown: Asia/Kolkata (default), another zone name, or local"),
    Field("seller_name", "seller.name", "LEADTUI_SELLER_NAME", _to_str, "your name as replies sign it ({seller} in a template)"),
    Field("seller_company", "seller.company", "LEADTUI_SELLER_COMPANY", _to_str, "your company ({seller_company} in a template)"),
    Field("seller_phone", "seller.phone", "LEADTUI_SELLER_PHONE", _to_str, "the phone buyers reach you on ({seller_phone} in a template)"),
    Field("smtp_host", "smtp.host", "LEADTUI_SMTP_HOST", _to_str, "SMTP server for email replies, e.g. smtp.gmail.com"),
    Field("smtp_port", "smtp.port", "LEADTUI_SMTP_PORT", _to_int, "SMTP port (465 for ssl, 587 for starttls, 25 for plain)"),
    Field("smtp_security", "smtp.security", "LEADTUI_SMTP_SECURITY", _choice("ssl", "starttls", "plain"), "ssl | starttls | plain"),
    Field("smtp_user", "smtp.user", "LEADTUI_SMTP_USER", _to_str, "SMTP login (default: the mailbox login)"),
    Field("smtp_password", "smtp.password", "LEADTUI_SMTP_PASSWORD", _to_secret, "SMTP password (default: the mailbox password)"),
    Field("smtp_from", "smtp.from", "LEADTUI_SMTP_FROM", _to_str, "the From address of replies (default: the SMTP login)"),
    Field("smtp_ca_file", "smtp.ca_file", "LEADTUI_SMTP_CA_FILE", _to_str, "a CA bundle for a self-signed SMTP server (default: imap.ca_file)"),
    Field("call_retry_hours", "calls.retry_hours", "LEADTUI_CALL_RETRY_HOURS", _to_float, "hours until a follow-up after no answer, busy or switched off"),
    Field("sla_first_contact", "sla.first_contact", "LEADTUI_SLA_FIRST_CONTACT", _to_limit, "first contact limit for a new lead: 15m (default), 1h, 90s, or off"),
    Field("buylead_valid_hours", "sla.buylead_valid_hours", "LEADTUI_BUYLEAD_VALID_HOURS", _to_float, "hours a BuyLead stays fresh, from when the buyer posted it (72)"),
    Field("seller_emails", "seller.emails", "LEADTUI_SELLER_EMAILS", _to_list, "your own addresses: mail from them is never a lead or a buyer's reply"),
    Field("alert_source_failing_minutes", "alerts.source_failing_minutes", "", _to_float, "source.failing: after a source has failed this many minutes"),
    Field("alert_review_growth", "alerts.review_growth", "", _to_int, "review.growing: when the review queue grew by this many items"),
    Field("alert_push_silence_hours", "alerts.push_silence_hours", "", _to_float, "push.watchdog: no IndiaMART push for this many hours while email or pull find leads"),
    Field("alert_digest_at", "alerts.digest_at", "", _to_clock, "digest: the local time of the daily digest, HH:MM"),
    Field("alert_stale_buylead_hours", "alerts.stale_buylead_hours", "", _to_float, "digest: a new BuyLead older than this is going stale"),
    Field("log_level", "log_level", "LEADTUI_LOG_LEVEL", _choice("debug", "info", "warning", "error"), "log level"),
)  # fmt: skip

_BY_ATTR = {f.attr: f for f in FIELDS}


@dataclass(frozen=True)
class Settings:
    db: str = ""
    imap_host: str = ""
    imap_port: int = 0  # 0: 993 for ssl, 143 otherwise
    imap_user: str = ""
    imap_password: Secret = Secret("")
    imap_security: str = "ssl"
    imap_folder: str = "INBOX"
    imap_ca_file: str = ""
    imap_senders: tuple[str, ...] = ("indiamart.com", "tradeindia.com")
    imap_backfill_days: int = 7
    imap_poll_seconds: float = 30.0
    imap_oauth_client_id: str = ""
    imap_oauth_client_secret: Secret = Secret("")
    imap_oauth_refresh_token: Secret = Secret("")
    imap_oauth_token_url: str = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
    http_listen: str = "127.0.0.1:8765"
    api_keys: tuple[ApiKey, ...] = ()
    push_token: Secret = Secret("")
    twilio_auth_token: Secret = Secret("")
    meta_app_secret: Secret = Secret("")
    meta_verify_token: Secret = Secret("")
    http_rate_per_minute: int = 600
    http_public_url: str = ""
    indiamart_key: Secret = Secret("")
    indiamart_url: str = "https://mapi.indiamart.com/wservce/crm/crmListing/v2/"
    pull_backfill_days: int = 7
    pull_interval_seconds: float = 300.0
    meta_leads_app_secret: Secret = Secret("")
    meta_leads_verify_token: Secret = Secret("")
    meta_page_token: Secret = Secret("")
    meta_form_ids: tuple[str, ...] = ()
    meta_graph_url: str = "https://graph.facebook.com"
    meta_graph_version: str = "v26.0"
    meta_backfill_days: int = 7
    gmail_enabled: bool = False
    gmail_label: str = "INBOX"
    gmail_topic: str = ""
    gmail_push_token: Secret = Secret("")
    gmail_poll_seconds: float = 60.0
    gmail_client_id: str = ""
    gmail_client_secret: Secret = Secret("")
    gmail_refresh_token: Secret = Secret("")
    gmail_token_url: str = ""  # empty: imap_oauth_token_url (Google's)
    gmail_api_url: str = "https://gmail.googleapis.com"
    justdial_token: Secret = Secret("")
    tradeindia_userid: str = ""
    tradeindia_profile_id: str = ""
    tradeindia_key: Secret = Secret("")
    tradeindia_url: str = "https://www.tradeindia.com/utils/my_inquiry.html"
    tradeindia_backfill_days: int = 7
    tradeindia_interval_seconds: float = 7200.0  # what public TradeIndia integrations poll at
    exportersindia_key: Secret = Secret("")
    exportersindia_email: str = ""
    exportersindia_url: str = "https://members.exportersindia.com/api-inquiry-detail.php"
    exportersindia_backfill_days: int = 7
    exportersindia_interval_seconds: float = 3600.0
    bell: bool = True
    desktop_notify: bool = False
    highlight_seconds: float = 4.0
    keys: dict[str, str] = dataclasses.field(default_factory=dict)
    team_members: tuple[str, ...] = ()
    timezone: str = DEFAULT_TIMEZONE
    seller_name: str = ""
    seller_company: str = ""
    seller_phone: str = ""
    smtp_host: str = ""
    smtp_port: int = 0  # 0: 465 for ssl, 587 for starttls, 25 for plain
    smtp_security: str = "starttls"
    smtp_user: str = ""
    smtp_password: Secret = Secret("")
    smtp_from: str = ""
    smtp_ca_file: str = ""
    call_retry_hours: float = 2.0
    sla_first_contact: float = 900.0  # seconds; 0: off
    buylead_valid_hours: float = 72.0
    seller_emails: tuple[str, ...] = ()
    # [templates.NAME]: the reply templates by name; "default" ships and can be replaced.
    templates: Mapping[str, Template] = dataclasses.field(
        default_factory=lambda: {DEFAULT.name: DEFAULT}
    )
    log_level: str = "info"
    notify: tuple[NotifyTarget, ...] = ()  # [[notify]] and [[webhook]] tables
    autoreply: Autoreply = Autoreply()  # [autoreply]
    alert_source_failing_minutes: float = 30.0
    alert_review_growth: int = 10
    alert_push_silence_hours: float = 12.0  # IndiaMART switches a push URL off after 48 h
    alert_digest_at: str = "09:00"
    alert_stale_buylead_hours: float = 24.0
    config_path: Path | None = None  # the file these settings came from, if any
    # The HTTP ingest re-reads API keys when the config file changes; not the demo's own key.
    api_keys_fixed: bool = False

    # ------------------------------------------------------------------ derived

    @property
    def db_url(self) -> str:
        return self.db or default_db_url()

    @property
    def imap_configured(self) -> bool:
        return bool(self.imap_host and self.imap_user)

    @property
    def imap_effective_port(self) -> int:
        if self.imap_port:
            return self.imap_port
        return 993 if self.imap_security == "ssl" else 143

    @property
    def imap_uses_oauth(self) -> bool:
        return bool(self.imap_oauth_refresh_token)

    @property
    def smtp_configured(self) -> bool:
        return bool(self.smtp_host)

    @property
    def smtp_effective_port(self) -> int:
        if self.smtp_port:
            return self.smtp_port
        return {"ssl": 465, "starttls": 587}.get(self.smtp_security, 25)

    @property
    def smtp_login(self) -> tuple[str, Secret]:
        """Who SMTP logs in as: its own user, or the mailbox's (Gmail takes the same)."""
        if self.smtp_user:
            return self.smtp_user, self.smtp_password
        return self.imap_user, self.smtp_password or self.imap_password

    @property
    def smtp_uses_oauth(self) -> bool:
        """XOAUTH2 with the mailbox's refresh token, when SMTP has no password of its own."""
        return not self.smtp_password and bool(self.imap_oauth_refresh_token)

    @property
    def own_addresses(self) -> tuple[str, ...]:
        """The seller's own addresses (seller.emails, the SMTP From and login, the mailbox
        login): mail from them that reaches the watched folder is never a lead."""
        found = (*self.seller_emails, self.smtp_from, self.smtp_user, self.imap_user)
        return tuple(dict.fromkeys(a.strip().lower() for a in found if "@" in a))

    @property
    def seller(self) -> dict[str, str]:
        return {
            "name": self.seller_name,
            "company": self.seller_company,
            "phone": self.seller_phone,
        }

    @property
    def http_enabled(self) -> bool:
        return self.http_listen.strip().lower() not in {"", "off", "no", "false", "0"}

    @property
    def http_accepts(self) -> bool:
        """The HTTP ingest is on and can accept something: an API key or a webhook secret."""
        secrets = (
            self.push_token,
            self.twilio_auth_token,
            self.meta_app_secret,
            self.meta_leads_app_secret,
            self.gmail_push_token,
            self.justdial_token,
        )
        return self.http_enabled and bool(self.api_keys or any(secrets))

    @property
    def meta_leads_secret(self) -> Secret:
        """The app secret lead ads notifications are signed with: ``[meta] app_secret``, else
        the WhatsApp Cloud one (one Meta app often serves both)."""
        return self.meta_leads_app_secret or self.meta_app_secret

    @property
    def meta_leads_verify(self) -> Secret:
        """The lead ads webhook's verify token: ``[meta] verify_token``, else WhatsApp's."""
        return self.meta_leads_verify_token or self.meta_verify_token

    @property
    def meta_leads_enabled(self) -> bool:
        """Facebook / Instagram lead ads are captured: a Page token reads them."""
        return bool(self.meta_page_token)

    @property
    def names_a_source(self) -> bool:
        """Whether these settings can capture anything: a mailbox, an API key or webhook
        secret for the HTTP ingest, or a CRM key. A salesperson's TUI with none of them only
        views: it must never take the capture lease from the team's ``leadtui serve``, whose
        restart would then wait for every such TUI to close, capturing nothing meanwhile."""
        return (
            self.imap_configured
            or self.http_accepts
            or bool(self.indiamart_key)
            or self.meta_leads_enabled
            or self.gmail_enabled
            or bool(self.tradeindia_key or self.exportersindia_key)
        )

    @property
    def gmail_oauth(self) -> tuple[str, Secret, Secret, str]:
        """The Gmail source's OAuth client id, secret, refresh token and token URL: its own
        ``[gmail]`` settings, else the mailbox's XOAUTH2 ones (one Google grant serves both)."""
        return (
            self.gmail_client_id or self.imap_oauth_client_id,
            self.gmail_client_secret or self.imap_oauth_client_secret,
            self.gmail_refresh_token or self.imap_oauth_refresh_token,
            self.gmail_token_url or self.imap_oauth_token_url,
        )

    @property
    def gmail_push(self) -> bool:
        """Push is set up: a Pub/Sub topic to watch and a token for the URL it pushes to."""
        return bool(self.gmail_topic and self.gmail_push_token and self.http_enabled)

    @property
    def imap_credentials_missing(self) -> bool:
        """A mailbox is named but nothing to log in with: no password and no XOAUTH2 token."""
        return self.imap_configured and not (self.imap_password or self.imap_uses_oauth)

    @property
    def http_host_port(self) -> tuple[str, int]:
        host, sep, port = self.http_listen.strip().rpartition(":")
        wrong = ConfigError(
            "LEADTUI_HTTP_LISTEN (http.listen) must be host:port with a port up to 65535, "
            f"or off, not {self.http_listen!r}"
        )
        if not sep or not port.strip().isdigit():
            raise wrong
        number = int(port)
        if number > 65535:
            raise wrong
        return host.strip("[]") or "127.0.0.1", number

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _convert(f: Field, value: Any, origin: str) -> Any:
    try:
        return f.convert(value)
    except (ValueError, TypeError) as exc:
        shown = "********" if f.convert is _to_secret else redact_url(repr(value))[:60]
        raise ConfigError(f"{origin}: {shown} is not valid ({exc}); {f.help}") from None


def _check_ca_file(path: str) -> None:
    """Fail now, naming the setting, rather than at every connection to the mailbox."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        problem = f"{path} holds no certificate leadtui can read ({reason})"
    except OSError as exc:
        problem = f"cannot read {path}: {exc.strerror or exc}"
    else:
        return
    raise ConfigError(
        f"LEADTUI_IMAP_CA_FILE (imap.ca_file): {problem}; "
        "point it at the PEM file of your mail server's CA, or unset it"
    )


def config_file_path(
    config_file: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> tuple[Path, bool]:
    """The config file to read, and whether it was named explicitly (flag or environment)."""
    env = os.environ if environ is None else environ
    explicit = config_file or env.get("LEADTUI_CONFIG")
    if explicit:
        return Path(explicit).expanduser(), True
    return default_config_path(), False


def load(
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build settings from file < environment < ``overrides`` (flags, by attribute name)."""
    env = os.environ if environ is None else environ
    path, explicit = config_file_path(config_file, env)
    data: dict[str, Any] = {}
    if explicit or path.exists():
        data = read_file(path, "--config" if config_file else "LEADTUI_CONFIG")

    values: dict[str, Any] = {}
    for f in FIELDS:
        raw = _lookup(data, f.key)
        if raw is not None:
            values[f.attr] = _convert(f, raw, f"{path}: {f.key}")
        if f.env and env.get(f.env, "") != "":
            values[f.attr] = _convert(f, env[f.env], f.env)

    api_keys: list[ApiKey] = []
    file_keys = _lookup(data, "http.api_keys")
    if file_keys is not None:
        api_keys.extend(_parse_api_keys_file(file_keys))
    if env.get("LEADTUI_API_KEYS"):
        api_keys.extend(_parse_api_keys_env(env["LEADTUI_API_KEYS"]))
    values["api_keys"] = tuple(api_keys)
    values["templates"] = _templates(_lookup(data, "templates"), path)
    values["notify"] = _parse_notify(_lookup(data, "notify"), env, path)
    # [[webhook]] tables are webhook targets with every lead event; one sender serves both.
    values["notify"] += _parse_notify(
        _lookup(data, "webhook"), env, path, "webhook", (t.name for t in values["notify"])
    )
    values["autoreply"] = _parse_autoreply(
        _lookup(data, "autoreply"), env, path, values["templates"]
    )

    for attr, value in (overrides or {}).items():
        if value is None:
            continue
        declared = _BY_ATTR.get(attr)
        flag = f"--{attr.replace('_', '-')}"
        values[attr] = _convert(declared, value, flag) if declared else value

    values["config_path"] = path if (explicit or path.exists()) else None
    settings = Settings(**values)
    if settings.http_enabled:
        settings.http_host_port  # noqa: B018 - validates LEADTUI_HTTP_LISTEN early
    if settings.imap_ca_file and settings.imap_configured:  # only where a mailbox is read
        _check_ca_file(settings.imap_ca_file)
    return settings


def _templates(table: Any, path: Path) -> dict[str, Template]:
    """``[templates.NAME]`` tables over the shipped default; a wrong one is one line."""
    found: dict[str, Template] = {DEFAULT.name: DEFAULT}
    if table is None:
        return found
    if not isinstance(table, Mapping):
        raise ConfigError(f"{path}: templates must be tables like [templates.price]")
    for name, value in table.items():
        try:
            found[str(name)] = from_config(str(name), value)
        except ValueError as exc:
            raise ConfigError(f"{path}: templates.{name}: {exc}") from None
    return found


def environment_help() -> list[tuple[str, str]]:
    """(environment name, what it sets) for every setting that has one; for help screens."""
    rows = [(f.env, f.help) for f in FIELDS if f.env]
    rows.append(("LEADTUI_API_KEYS", "HTTP API keys as name:key,name2[ingest]:key2"))
    rows.append(("LEADTUI_CONFIG", "the config file to read"))
    return rows


SAMPLE_CONFIG = """\
# leadtui configuration. Environment variables (LEADTUI_*) override these values,
# and command-line flags override both. Run `leadtui doctor` to check them.

# db = "postgresql://leads@dbhost/leads"   # default: a SQLite file in the user data dir

[imap]
# The mailbox IndiaMART writes to: uncomment these three and fill them in.
# host = "imap.gmail.com"
# user = "sales@yourcompany.in"
# password = "abcd efgh ijkl mnop"       # a Gmail app password, or use oauth_* below
# security = "ssl"                       # ssl | starttls | plain
# folder = "INBOX"                       # the folder your IndiaMART mail lands in
# senders = ["indiamart.com", "tradeindia.com"]

[http]
# listen = "127.0.0.1:8765"              # or "off"
# push_token = "long-random-string"      # IndiaMART push URL: /api/indiamart/push/<token>

[http.api_keys]
# created by `leadtui keys add NAME`; only hashes are stored here

[indiamart]
# key = "your CRM key from Lead Manager"

[meta]
# Facebook and Instagram lead ads (README: Other lead channels).
# page_token = "EAAB…"                   # a Page access token with leads_retrieval
# app_secret = "…"                       # signs the webhook (default: [http] meta_app_secret)
# verify_token = "long-random-string"    # typed into the app's Webhooks settings
# form_ids = ["1234567890"]              # forms to backfill (notified forms are added)

[gmail]
# For Google Workspace domains where IMAP is off: the Gmail API, read-only (README: Other lead channels).
# enable = true
# refresh_token = "1//0g…"               # scope https://www.googleapis.com/auth/gmail.readonly
# client_id = "…apps.googleusercontent.com"
# client_secret = "…"
# label = "INBOX"
# topic = "projects/my-project/topics/leadtui-gmail"   # push; without it leadtui polls
# push_token = "long-random-string"      # push URL: /api/webhooks/gmail/<token>

[justdial]
# JustDial's lead push (README: Other lead channels).
# token = "long-random-string"           # at least 16 characters; JustDial's URL: /api/justdial/<token>

[tradeindia]
# userid = "1234567"                     # TradeIndia → My Inquiry API: userid, profile_id, key
# profile_id = "7654321"
# key = "…"

[exportersindia]
# key = "…"                              # ExportersIndia → inquiry API key
# email = "sales@yourcompany.in"         # the account's email

[team]
# members = ["asha", "ravi"]             # login names; the owner prompt completes them

[seller]
# name = "Asha"                          # {seller} in a reply template
# company = "Shree Steel Traders"        # {seller_company}
# phone = "+91 98765 43210"              # {seller_phone}
# emails = ["asha@shreesteel.in"]        # your own addresses: their mail is never a lead

[smtp]
# Email replies (R, then an Email line). Login and password default to the mailbox's.
# host = "smtp.gmail.com"
# security = "starttls"                  # ssl | starttls | plain
# port = 587

# [templates.price]                      # R offers "default" and each of these
# text = "Namaste[ {first_name}], our rate for {product} is attached. {seller}"
# subject = "Rates[ for {product}]"      # for email; [optional text] drops when empty

[calls]
# retry_hours = 2                        # d: no answer, busy, switched off → follow-up then

[sla]
# first_contact = "15m"                  # a new lead turns amber at half, red at the limit; "off"
# buylead_valid_hours = 72               # a BuyLead goes stale this long after the buyer posted it

[ui]
# bell = true
# desktop_notify = false
# timezone = "Asia/Kolkata"              # the zone of every time shown; "local": this machine's
"""
