"""Settings: file < environment < flags, and secrets that never show."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from leadtui import config
from leadtui.config import ConfigError, Secret


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "c.toml",
        'db = "/from/file.db"\n[imap]\nhost = "imap.file.example"\nfolder = "Leads"\n'
        "[ui]\nbell = false\n",
    )
    env = {"LEADTUI_IMAP_HOST": "imap.env.example", "LEADTUI_DB": "/from/env.db"}
    s = config.load(cfg, environ=env, overrides={"db": "/from/flag.db"})
    assert s.db == "/from/flag.db"
    assert s.imap_host == "imap.env.example"
    assert s.imap_folder == "Leads"
    assert s.bell is False
    assert s.config_path == cfg


def test_leadtui_config_names_the_file(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.toml", '[imap]\nuser = "sales@example.in"\n')
    s = config.load(environ={"LEADTUI_CONFIG": str(cfg)})
    assert s.imap_user == "sales@example.in"


def test_missing_named_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"does not exist; create it with 'leadtui init'"):
        config.load(environ={"LEADTUI_CONFIG": str(tmp_path / "nope.toml")})


def test_invalid_values_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="LEADTUI_IMAP_PORT"):
        config.load(environ={"LEADTUI_IMAP_PORT": "nine-nine-three"})
    with pytest.raises(ConfigError, match="ssl, starttls, plain"):
        config.load(environ={"LEADTUI_IMAP_SECURITY": "tls1.3"})
    with pytest.raises(ConfigError, match="LEADTUI_HTTP_LISTEN"):
        config.load(environ={"LEADTUI_HTTP_LISTEN": "8765"})
    bad = write(tmp_path / "bad.toml", "[imap\nhost=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(bad, environ={})


def test_secrets_never_show_in_repr_str_logs_or_errors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"LEADTUI_IMAP_PASSWORD": "hunter2-app-pass", "LEADTUI_INDIAMART_KEY": "crm-key-123"}
    s = config.load(environ=env)
    assert s.imap_password.reveal() == "hunter2-app-pass"
    shown = repr(s) + str(s) + f"{s.imap_password}" + repr(s.indiamart_key)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("settings: %s %r", s, s)
    for text in (shown, caplog.text):
        assert "hunter2" not in text
        assert "crm-key-123" not in text
    assert not Secret("")
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path / "c.toml", '[imap]\npassword = ["hunter2"]\n'), environ={})
    assert "imap.password" in str(err.value)
    assert "hunter2" not in str(err.value)


def test_api_keys_from_environment_are_hashed_and_checked(tmp_path: Path) -> None:
    s = config.load(environ={"LEADTUI_API_KEYS": "website:abc123, crm:xyz"})
    assert [k.name for k in s.api_keys] == ["website", "crm"]
    assert all("abc123" not in k.digest for k in s.api_keys)
    assert s.api_keys[0].matches("abc123")
    assert not s.api_keys[0].matches("abc124")
    with pytest.raises(ConfigError, match="name:key"):
        config.load(environ={"LEADTUI_API_KEYS": "just-a-key"})


def test_config_file_keeps_only_hashes(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.toml", '[http.api_keys]\nwebsite = "plaintext-key"\n')
    with pytest.raises(ConfigError, match="leadtui keys add"):
        config.load(cfg, environ={})


def test_adding_and_removing_keys_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "c.toml",
        '# my settings\n[imap]\nhost = "imap.gmail.com"\n\n[http.api_keys]\n\n[ui]\nbell = false\n',
    )
    key = config.new_api_key()
    config.add_api_key(cfg, "website", config.hash_api_key(key))
    config.add_api_key(cfg, "crm.tool", config.hash_api_key("other"))
    s = config.load(cfg, environ={})
    assert sorted(k.name for k in s.api_keys) == ["crm.tool", "website"]
    assert next(k for k in s.api_keys if k.name == "website").matches(key)
    assert s.imap_host == "imap.gmail.com"
    assert s.bell is False
    assert "# my settings" in cfg.read_text()
    assert key not in cfg.read_text()
    with pytest.raises(ConfigError, match="exists"):
        config.add_api_key(cfg, "website", config.hash_api_key("again"))
    assert config.remove_api_key(cfg, "website")
    assert not config.remove_api_key(cfg, "website")
    assert [k.name for k in config.load(cfg, environ={}).api_keys] == ["crm.tool"]
    assert cfg.stat().st_mode & 0o007 == 0  # it was 0644: others lose access, the group keeps it


def test_keys_file_is_created_when_missing(tmp_path: Path) -> None:
    cfg = tmp_path / "new" / "config.toml"
    config.add_api_key(cfg, "website", config.hash_api_key("k"))
    assert [k.name for k in config.load(cfg, environ={}).api_keys] == ["website"]


def test_derived_settings() -> None:
    s = config.load(environ={"LEADTUI_HTTP_LISTEN": "off"})
    assert not s.http_enabled
    s = config.load(
        environ={"LEADTUI_HTTP_LISTEN": "0.0.0.0:9000", "LEADTUI_IMAP_SECURITY": "plain"}
    )
    assert s.http_host_port == ("0.0.0.0", 9000)
    assert s.imap_effective_port == 143
    assert config.load(environ={}).imap_effective_port == 993
    assert not config.load(environ={}).imap_configured


def test_a_config_file_that_is_not_utf8_says_so(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[imap]\nhost = "imap.example.in"\n', encoding="utf-16")
    with pytest.raises(ConfigError, match=r"is not UTF-8 text.*save it as UTF-8"):
        config.load(cfg, environ={})
    with pytest.raises(ConfigError, match="UTF-8"):
        config.add_api_key(cfg, "website", config.hash_api_key("k"))
    with pytest.raises(ConfigError, match="UTF-8"):
        config.remove_api_key(cfg, "website")


def test_removing_a_key_from_an_invalid_file_is_an_error_not_no_such_key(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.toml", '[imap\n[http.api_keys]\nwebsite = "sha256:00"\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.remove_api_key(cfg, "website")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.add_api_key(cfg, "crm", config.hash_api_key("k"))
    assert "website" in cfg.read_text()


@pytest.mark.parametrize("listen", ["127.0.0.1:99999", "127.0.0.1:-1", "127.0.0.1:http"])
def test_a_listen_port_must_be_a_port(listen: str) -> None:
    with pytest.raises(ConfigError, match=r"LEADTUI_HTTP_LISTEN.*up to 65535"):
        config.load(environ={"LEADTUI_HTTP_LISTEN": listen})
    assert config.load(environ={"LEADTUI_HTTP_LISTEN": "[::1]:0"}).http_host_port == ("::1", 0)


def test_a_database_url_of_another_kind_is_refused_without_its_password() -> None:
    long_password = "hunter2" * 12  # longer than the part of a bad value an error shows
    with pytest.raises(ConfigError) as err:
        config.load(environ={"LEADTUI_DB": f"mysql://sales:{long_password}@dbhost/leads"})
    assert str(err.value).startswith("LEADTUI_DB: 'mysql://sales:********@dbhost/leads'")
    assert "sqlite:///path or postgresql://" in str(err.value)
    assert "hunter2" not in str(err.value)
    for url in ("sqlite:///x.db", "postgres://u@h/d", "postgresql://u@h/d", "leads.db", "a:b"):
        assert config.load(environ={"LEADTUI_DB": url}).db == url


def test_the_ca_file_must_be_a_readable_certificate_file(tmp_path: Path) -> None:
    mailbox = {"LEADTUI_IMAP_HOST": "imap.example.in", "LEADTUI_IMAP_USER": "sales@example.in"}
    nope = {**mailbox, "LEADTUI_IMAP_CA_FILE": str(tmp_path / "nope.pem")}
    with pytest.raises(ConfigError, match=r"^LEADTUI_IMAP_CA_FILE .*nope\.pem.*No such file"):
        config.load(environ=nope)
    junk = write(tmp_path / "junk.pem", "not a certificate\n")
    with pytest.raises(ConfigError, match=r"LEADTUI_IMAP_CA_FILE .*junk\.pem holds no certificate"):
        config.load(environ={**mailbox, "LEADTUI_IMAP_CA_FILE": str(junk)})
    # Without a mailbox nothing reads it: list, export and keys are not held up by it.
    assert config.load(environ={"LEADTUI_IMAP_CA_FILE": str(junk)}).imap_ca_file == str(junk)


def test_a_mailbox_without_a_password_or_token_is_missing_credentials() -> None:
    named = {"LEADTUI_IMAP_HOST": "imap.example.in", "LEADTUI_IMAP_USER": "sales@example.in"}
    assert config.load(environ=named).imap_credentials_missing
    with_password = {**named, "LEADTUI_IMAP_PASSWORD": "app-pass"}
    assert not config.load(environ=with_password).imap_credentials_missing
    with_token = {**named, "LEADTUI_IMAP_OAUTH_REFRESH_TOKEN": "1//token"}
    assert not config.load(environ=with_token).imap_credentials_missing
    assert not config.load(environ={}).imap_credentials_missing
