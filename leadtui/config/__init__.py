"""Settings: a TOML file, overridden by ``LEADTUI_*`` environment names, overridden by flags.

Every setting is declared once in ``FIELDS`` with its TOML key, its environment name, its
type and its default. Secrets are wrapped in :class:`Secret`, whose ``repr`` and ``str`` never
show the value, so a settings object can be logged or shown in an error safely.

The file lives in the user config directory (``leadtui paths`` and ``leadtui doctor`` show
where), or wherever ``--config`` / ``LEADTUI_CONFIG`` points.

The package, one concern a module (everything is imported from ``leadtui.config``):

- :mod:`~leadtui.config.values`: errors, checks, :class:`Secret`, paths, value converters,
  the time zone;
- :mod:`~leadtui.config.files`: reading the TOML file and replacing it safely;
- :mod:`~leadtui.config.notify`: ``[[notify]]``, ``[[webhook]]`` and ``[autoreply]``;
- :mod:`~leadtui.config.keys`: API keys, and ``leadtui keys`` editing the file;
- :mod:`~leadtui.config.settings`: :data:`FIELDS`, :class:`Settings`, :func:`load`, the sample
  config ``leadtui init`` writes.
"""

from __future__ import annotations

from leadtui.config.files import (
    read_file,
    write_config,
)
from leadtui.config.keys import (
    LEGACY_SCOPES,
    NEW_KEY_SCOPES,
    SCOPES,
    ApiKey,
    add_api_key,
    hash_api_key,
    new_api_key,
    parse_scopes,
    remove_api_key,
)
from leadtui.config.notify import (
    ALERT_EVENTS,
    DUE_EVENTS,
    LEAD_EVENTS,
    NOTIFY_EVENTS,
    NOTIFY_TYPES,
    NTFY_PRIORITIES,
    QUIET_CHOICES,
    WEBHOOK_EVENTS,
    WHATSAPP_GRAPH_URL,
    Autoreply,
    NotifyTarget,
)
from leadtui.config.settings import (
    FIELDS,
    SAMPLE_CONFIG,
    Field,
    Settings,
    config_file_path,
    environment_help,
    load,
)
from leadtui.config.values import (
    APP_NAME,
    DEFAULT_TIMEZONE,
    Check,
    ConfigError,
    Secret,
    config_dir,
    data_dir,
    default_config_path,
    default_db_url,
    is_loopback_host,
    log_path,
    posix_timezone,
    redact_url,
    state_dir,
    timezone_label,
    unsupported_db_scheme,
    use_timezone,
)

__all__ = [
    "ALERT_EVENTS",
    "APP_NAME",
    "DEFAULT_TIMEZONE",
    "DUE_EVENTS",
    "FIELDS",
    "LEAD_EVENTS",
    "LEGACY_SCOPES",
    "NEW_KEY_SCOPES",
    "NOTIFY_EVENTS",
    "NOTIFY_TYPES",
    "NTFY_PRIORITIES",
    "QUIET_CHOICES",
    "SAMPLE_CONFIG",
    "SCOPES",
    "WEBHOOK_EVENTS",
    "WHATSAPP_GRAPH_URL",
    "ApiKey",
    "Autoreply",
    "Check",
    "ConfigError",
    "Field",
    "NotifyTarget",
    "Secret",
    "Settings",
    "add_api_key",
    "config_dir",
    "config_file_path",
    "data_dir",
    "default_config_path",
    "default_db_url",
    "environment_help",
    "hash_api_key",
    "is_loopback_host",
    "load",
    "log_path",
    "new_api_key",
    "parse_scopes",
    "posix_timezone",
    "read_file",
    "redact_url",
    "remove_api_key",
    "state_dir",
    "timezone_label",
    "unsupported_db_scheme",
    "use_timezone",
    "write_config",
]
