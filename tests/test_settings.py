"""Settings: one place, typed, generated for development, strict in production."""

from __future__ import annotations

import json
import stat

import pytest

from config.settings import Settings, SettingsError

GOOD_SID = "AC" + "a" * 32


def test_a_fresh_machine_gets_generated_development_secrets_once(tmp_path) -> None:
    first = Settings.from_env({"TIPLINE_VAR_DIR": str(tmp_path)})
    second = Settings.from_env({"TIPLINE_VAR_DIR": str(tmp_path)})
    assert first.secret_key == second.secret_key and first.twilio_auth_token == second.twilio_auth_token
    assert first.audit_key == second.audit_key and len(first.audit_key) >= 32
    assert first.audit_key != first.secret_key
    assert first.twilio_credentials_generated
    assert stat.S_IMODE((tmp_path / "dev-secrets.json").stat().st_mode) == 0o600
    assert first.port == 5000 and first.host == "127.0.0.1"
    assert first.public_base_url == "http://127.0.0.1:5000"
    assert first.redis_url == f"unix://{tmp_path}/redis/redis.sock"
    assert first.twilio_api_base == "https://api.twilio.com"
    assert first.feedback_deadline_days == 90


def test_secrets_are_not_shown_in_the_settings_repr(tmp_path) -> None:
    settings = Settings.from_env({"TIPLINE_VAR_DIR": str(tmp_path)})
    assert settings.secret_key not in repr(settings) and settings.twilio_auth_token not in repr(settings)
    assert settings.audit_key not in repr(settings) and settings.vault_keys not in repr(settings)


@pytest.mark.parametrize("environ, names", [
    ({"TIPLINE_ENV": "production"}, "TWILIO_ACCOUNT_SID"),
    ({"TIPLINE_ENV": "production", "TWILIO_ACCOUNT_SID": GOOD_SID, "TWILIO_AUTH_TOKEN": "t" * 32}, "SECRET_KEY"),
    ({"TIPLINE_ENV": "production", "TWILIO_ACCOUNT_SID": GOOD_SID, "TWILIO_AUTH_TOKEN": "t" * 32,
      "SECRET_KEY": "k" * 40}, "VAULT_KEYS"),
    ({"TIPLINE_ENV": "production", "TWILIO_ACCOUNT_SID": GOOD_SID, "TWILIO_AUTH_TOKEN": "t" * 32,
      "SECRET_KEY": "k" * 40, "VAULT_KEYS": "k1:" + "A" * 43 + "="}, "AUDIT_KEY"),
    ({"TIPLINE_ENV": "production", "TWILIO_ACCOUNT_SID": GOOD_SID, "TWILIO_AUTH_TOKEN": "t" * 32,
      "SECRET_KEY": "k" * 40, "VAULT_KEYS": "k1:" + "A" * 43 + "=", "AUDIT_KEY": "a" * 40}, "REDIS_URL"),
    ({"STT_LANGUAGES": " , "}, "STT_LANGUAGES"),
    ({"TIPLINE_ENV": "staging"}, "TIPLINE_ENV"),
    ({"PORT": "http"}, "PORT"),
    ({"PORT": "70000"}, "PORT"),
    ({"PUBLIC_BASE_URL": "tipline.example.org"}, "PUBLIC_BASE_URL"),
    ({"PUBLIC_BASE_URL": "https://tipline.example.org/?x=1"}, "PUBLIC_BASE_URL"),
    ({"TWILIO_API_BASE": "ftp://x"}, "TWILIO_API_BASE"),
    ({"TWILIO_ACCOUNT_SID": GOOD_SID}, "TWILIO_AUTH_TOKEN"),
    ({"TWILIO_ACCOUNT_SID": "AC123", "TWILIO_AUTH_TOKEN": "t"}, "TWILIO_ACCOUNT_SID"),
    ({"SECRET_KEY": "short"}, "SECRET_KEY"),
    ({"AUDIT_KEY": "short"}, "AUDIT_KEY"),
    ({"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
    ({"FEEDBACK_DEADLINE_DAYS": "0"}, "FEEDBACK_DEADLINE_DAYS"),
    ({"FEEDBACK_DEADLINE_DAYS": "three months"}, "FEEDBACK_DEADLINE_DAYS"),
    ({"PERIOD_KEYS_DIR": "relative/keys"}, "PERIOD_KEYS_DIR"),
    ({"REDIS_SENTINELS": "10.0.0.1"}, "REDIS_SENTINELS"),
    ({"REDIS_SENTINELS": "10.0.0.1:26379,:26379"}, "REDIS_SENTINELS"),
    ({"REDIS_SENTINELS": "10.0.0.1:99999"}, "REDIS_SENTINELS"),
    ({"REDIS_SENTINELS": "10.0.0.1:26379", "REDIS_SENTINEL_MASTER": "my master"}, "REDIS_SENTINEL_MASTER"),
    ({"REDIS_REPLICA_ACKS": "9"}, "REDIS_REPLICA_ACKS"),
    ({"TIPLINE_ENV": "production", "TWILIO_ACCOUNT_SID": GOOD_SID, "TWILIO_AUTH_TOKEN": "t" * 32,
      "SECRET_KEY": "k" * 40, "VAULT_KEYS": "k1:" + "A" * 43 + "=", "AUDIT_KEY": "a" * 40,
      "REDIS_URL": "redis://10.0.0.5:6380/0"}, "PERIOD_KEYS_DIR"),
])
def test_a_bad_or_missing_setting_names_its_variable(tmp_path, environ, names) -> None:
    with pytest.raises(SettingsError, match=names):
        Settings.from_env({"TIPLINE_VAR_DIR": str(tmp_path), **environ})


def test_production_generates_nothing(tmp_path) -> None:
    settings = Settings.from_env({
        "TIPLINE_ENV": "production", "TIPLINE_VAR_DIR": str(tmp_path), "TWILIO_ACCOUNT_SID": GOOD_SID,
        "TWILIO_AUTH_TOKEN": "t" * 32, "SECRET_KEY": "k" * 40, "REDIS_URL": "redis://10.0.0.5:6380/0",
        "VAULT_KEYS": "k1:" + "A" * 43 + "=", "AUDIT_KEY": "a" * 40,
        "PUBLIC_BASE_URL": "https://tips.example.org/", "HOST": "0.0.0.0", "PORT": "8080",
        "PERIOD_KEYS_DIR": "/mnt/tipline-keys"})
    assert settings.is_production and not settings.twilio_credentials_generated
    assert str(settings.period_keys_dir) == "/mnt/tipline-keys"
    assert settings.audit_key == "a" * 40
    assert settings.public_base_url == "https://tips.example.org"
    assert (settings.host, settings.port) == ("0.0.0.0", 8080)
    assert not (tmp_path / "dev-secrets.json").exists()


def test_an_older_dev_secrets_file_gets_the_missing_secret_added(tmp_path) -> None:
    (tmp_path / "dev-secrets.json").write_text(json.dumps({"SECRET_KEY": "k" * 40, "TWILIO_ACCOUNT_SID": GOOD_SID,
                                                           "TWILIO_AUTH_TOKEN": "t"}))
    settings = Settings.from_env({"TIPLINE_VAR_DIR": str(tmp_path)})
    assert settings.secret_key == "k" * 40 and settings.vault_keys.startswith("dev1:")
    assert len(settings.audit_key) >= 32
    assert stat.S_IMODE((tmp_path / "dev-secrets.json").stat().st_mode) == 0o600
    again = Settings.from_env({"TIPLINE_VAR_DIR": str(tmp_path)})
    assert (again.vault_keys, again.audit_key) == (settings.vault_keys, settings.audit_key)


def test_a_set_audit_key_is_used_and_the_others_still_generated(tmp_path) -> None:
    settings = Settings.from_env({"TIPLINE_VAR_DIR": str(tmp_path), "AUDIT_KEY": "  " + "a" * 40 + " "})
    assert settings.audit_key == "a" * 40 and len(settings.secret_key) >= 32
    assert '"AUDIT_KEY"' in (tmp_path / "dev-secrets.json").read_text()
