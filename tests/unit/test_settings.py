"""Configuration: defaults are the embedded mode; a wrong value fails with one line naming it."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cerniq_outreach.settings import DEFAULT_BASE_URLS, Settings, SettingsError, redact_url

# Every variable of interfaces.md, "Configuration (environment)".
VARIABLES = (
    "CERNIQ_DATABASE_URL",
    "CERNIQ_REDIS_URL",
    "CERNIQ_BROKER_URL",
    "CERNIQ_TIMEZONE",
    "CERNIQ_LOG_FORMAT",
    "TIMELINESAI_API_KEY",
    "TIMELINESAI_WEBHOOK_SECRET",
    "INSTANTLY_API_KEY",
    "INSTANTLY_WEBHOOK_SECRET",
    "RESEND_API_KEY",
    "RESEND_WEBHOOK_SECRET",
    "CERNIQ_LLM_URL",
    "CERNIQ_LLM_API_KEY",
    "CERNIQ_LLM_MODEL",
    "TIMELINESAI_BASE_URL",
    "INSTANTLY_BASE_URL",
    "RESEND_BASE_URL",
)
SECRETS = (
    "TIMELINESAI_API_KEY",
    "TIMELINESAI_WEBHOOK_SECRET",
    "INSTANTLY_API_KEY",
    "INSTANTLY_WEBHOOK_SECRET",
    "RESEND_API_KEY",
    "RESEND_WEBHOOK_SECRET",
    "CERNIQ_LLM_API_KEY",
)
SVIX_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105  # a made-up test value
LLM = {"CERNIQ_LLM_URL": "https://llm.example/v1", "CERNIQ_LLM_MODEL": "m"}


def load_error(environ: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ)
    return str(caught.value)


def test_defaults_are_the_embedded_mode():
    """With nothing set: SQLite under ./var, no Redis, no broker, Bucharest, sandbox, lexicon."""
    settings = Settings.from_env({})
    assert settings.database_url == "sqlite:///./var/cerniq.db"
    assert settings.sqlite_path == Path("var/cerniq.db")
    assert settings.redis_url is None
    assert settings.broker_url is None
    assert settings.timezone == ZoneInfo("Europe/Bucharest")
    assert settings.log_format is None
    assert settings.llm is None
    assert settings.embedded
    assert settings.timelinesai.base_url == "https://app.timelines.ai/integrations/api"
    assert settings.instantly.base_url == "https://api.instantly.ai"
    assert settings.resend.base_url == "https://api.resend.com"
    for channel in ("WHATSAPP", "EMAIL_COLD", "EMAIL_WARM"):
        assert not settings.channel_is_live(channel)
    assert settings == Settings()


def test_an_empty_variable_counts_as_unset():
    """`VAR=` in a shell or compose file means "use the default", never "the empty value"."""
    assert Settings.from_env(dict.fromkeys(VARIABLES, "")) == Settings.from_env({})


def test_a_full_production_configuration_is_read():
    """Every variable set to a good value is taken as given (base URLs lose a trailing slash)."""
    settings = Settings.from_env(
        {
            "CERNIQ_DATABASE_URL": "postgresql://cerniq:pw@db.internal:5432/cerniq",
            "CERNIQ_REDIS_URL": "rediss://:pw@cache.internal:6380/2",
            "CERNIQ_BROKER_URL": "amqps://user:pw@mq.internal:5671/%2F",
            "CERNIQ_TIMEZONE": "Europe/London",
            "CERNIQ_LOG_FORMAT": "JSON",
            "TIMELINESAI_API_KEY": "tl-key",
            "TIMELINESAI_WEBHOOK_SECRET": "tl_hook-secret.1",
            "INSTANTLY_API_KEY": "inst-key",
            "INSTANTLY_WEBHOOK_SECRET": "inst/secret+1=",
            "RESEND_API_KEY": "re_123",
            "RESEND_WEBHOOK_SECRET": SVIX_SECRET,
            "CERNIQ_LLM_URL": "http://127.0.0.1:11434/v1/",
            "CERNIQ_LLM_API_KEY": "sk-1",
            "CERNIQ_LLM_MODEL": "qwen2.5:7b",
            "TIMELINESAI_BASE_URL": "http://127.0.0.1:9001/",
            "INSTANTLY_BASE_URL": "http://127.0.0.1:9002",
            "RESEND_BASE_URL": "https://proxy.example/resend",
        }
    )
    assert settings.database_backend == "postgres"
    assert settings.sqlite_path is None
    assert settings.redis_url == "rediss://:pw@cache.internal:6380/2"
    assert settings.broker_url == "amqps://user:pw@mq.internal:5671/%2F"
    assert settings.timezone.key == "Europe/London"
    assert settings.log_format == "json"
    assert not settings.embedded
    assert settings.timelinesai.base_url == "http://127.0.0.1:9001"
    assert settings.timelinesai.webhook_secret == "tl_hook-secret.1"  # noqa: S105  # made up
    assert settings.resend.webhook_secret == SVIX_SECRET
    assert settings.llm is not None
    assert (settings.llm.url, settings.llm.model, settings.llm.api_key) == (
        "http://127.0.0.1:11434/v1",
        "qwen2.5:7b",
        "sk-1",
    )
    assert all(settings.channel_is_live(c) for c in ("WHATSAPP", "EMAIL_COLD", "EMAIL_WARM"))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CERNIQ_DATABASE_URL", "postgres://localhost/cerniq"),
        ("CERNIQ_DATABASE_URL", "postgresql:///cerniq"),
        ("CERNIQ_DATABASE_URL", "sqlite:////var/lib/cerniq/cerniq.db"),
        ("CERNIQ_REDIS_URL", "redis://localhost"),
        ("CERNIQ_REDIS_URL", "unix:///run/redis/redis.sock"),
        ("CERNIQ_BROKER_URL", "redis://localhost:6379/3"),
        ("CERNIQ_BROKER_URL", "amqp://guest:guest@localhost:5672/%2F"),
        ("CERNIQ_TIMEZONE", "UTC"),
        ("CERNIQ_LOG_FORMAT", "console"),
    ],
)
def test_accepted_forms(name, value):
    """Each documented form of a URL or value is accepted."""
    Settings.from_env({name: value})


@pytest.mark.parametrize(
    ("environ", "name"),
    [
        ({"CERNIQ_DATABASE_URL": "mysql://u@h/db"}, "CERNIQ_DATABASE_URL"),
        ({"CERNIQ_DATABASE_URL": "./var/cerniq.db"}, "CERNIQ_DATABASE_URL"),
        ({"CERNIQ_DATABASE_URL": "sqlite:///"}, "CERNIQ_DATABASE_URL"),
        ({"CERNIQ_DATABASE_URL": "sqlite://host/file.db"}, "CERNIQ_DATABASE_URL"),
        ({"CERNIQ_DATABASE_URL": "postgresql://"}, "CERNIQ_DATABASE_URL"),
        ({"CERNIQ_DATABASE_URL": "postgresql://h:70000/db"}, "CERNIQ_DATABASE_URL"),
        ({"CERNIQ_REDIS_URL": "http://localhost:6379"}, "CERNIQ_REDIS_URL"),
        ({"CERNIQ_REDIS_URL": "redis://localhost/x"}, "CERNIQ_REDIS_URL"),
        ({"CERNIQ_REDIS_URL": "unix://"}, "CERNIQ_REDIS_URL"),
        ({"CERNIQ_BROKER_URL": "kafka://localhost"}, "CERNIQ_BROKER_URL"),
        ({"CERNIQ_BROKER_URL": "amqp://"}, "CERNIQ_BROKER_URL"),
        ({"CERNIQ_TIMEZONE": "Europe/Bucuresti"}, "CERNIQ_TIMEZONE"),
        ({"CERNIQ_TIMEZONE": "../../etc/passwd"}, "CERNIQ_TIMEZONE"),
        ({"CERNIQ_LOG_FORMAT": "xml"}, "CERNIQ_LOG_FORMAT"),
        ({"TIMELINESAI_API_KEY": "key with space"}, "TIMELINESAI_API_KEY"),
        ({"TIMELINESAI_WEBHOOK_SECRET": "no/slashes"}, "TIMELINESAI_WEBHOOK_SECRET"),
        ({"INSTANTLY_API_KEY": "key\n"}, "INSTANTLY_API_KEY"),
        ({"INSTANTLY_WEBHOOK_SECRET": "tab\there"}, "INSTANTLY_WEBHOOK_SECRET"),
        ({"RESEND_API_KEY": "re_1 2"}, "RESEND_API_KEY"),
        ({"RESEND_WEBHOOK_SECRET": "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "RESEND_WEBHOOK_SECRET"),
        ({"RESEND_WEBHOOK_SECRET": "whsec_not*base64"}, "RESEND_WEBHOOK_SECRET"),
        ({"RESEND_WEBHOOK_SECRET": "whsec_"}, "RESEND_WEBHOOK_SECRET"),
        ({"CERNIQ_LLM_URL": "https://llm.example/v1"}, "CERNIQ_LLM_MODEL"),
        ({"CERNIQ_LLM_URL": "ftp://llm.example", "CERNIQ_LLM_MODEL": "m"}, "CERNIQ_LLM_URL"),
        ({"CERNIQ_LLM_API_KEY": "sk-1"}, "CERNIQ_LLM_API_KEY"),
        ({"CERNIQ_LLM_MODEL": "m"}, "CERNIQ_LLM_MODEL"),
        ({**LLM, "CERNIQ_LLM_API_KEY": "sk 1"}, "CERNIQ_LLM_API_KEY"),
        ({**LLM, "CERNIQ_LLM_MODEL": "m\n"}, "CERNIQ_LLM_MODEL"),
        ({"TIMELINESAI_BASE_URL": "app.timelines.ai"}, "TIMELINESAI_BASE_URL"),
        ({"INSTANTLY_BASE_URL": "https://"}, "INSTANTLY_BASE_URL"),
        ({"RESEND_BASE_URL": "ws://api.resend.com"}, "RESEND_BASE_URL"),
    ],
)
def test_a_wrong_value_fails_with_one_line_naming_the_variable(environ, name):
    """The error is a single line that starts with the variable's name."""
    message = load_error(environ)
    assert message.startswith(name)
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize("name", SECRETS)
def test_a_secret_is_never_echoed(name):
    """A malformed key or webhook secret is reported without quoting its value."""
    value = "Sup3rS3cretValue with space"
    message = load_error({name: value, **LLM} if "LLM" in name else {name: value})
    assert name in message
    assert "Sup3rS3cret" not in message


def test_a_password_in_a_url_is_never_echoed():
    """Database, Redis and broker URLs may hold passwords; errors never repeat them."""
    for name in ("CERNIQ_DATABASE_URL", "CERNIQ_REDIS_URL", "CERNIQ_BROKER_URL"):
        for url in ("mysql://u:Hunter2pw@h/x", "redis://u:Hunter2pw@h:99999/0"):
            assert "Hunter2pw" not in load_error({name: url})


def test_settings_repr_and_describe_hide_secrets():
    """`repr` and the loggable summary show neither keys nor passwords."""
    settings = Settings.from_env(
        {
            "CERNIQ_DATABASE_URL": "postgresql://u:Hunter2pw@db/cerniq",
            "TIMELINESAI_API_KEY": "tl-Hunter2key",
            "RESEND_WEBHOOK_SECRET": SVIX_SECRET,
            **LLM,
            "CERNIQ_LLM_API_KEY": "sk-Hunter2llm",
        }
    )
    shown = repr(settings) + repr(settings.describe())
    for secret in ("Hunter2", SVIX_SECRET):
        assert secret not in shown
    assert settings.describe()["database_url"] == "postgresql://u:***@db/cerniq"
    assert settings.describe()["timelinesai"].startswith("live")


def test_redact_url_masks_only_the_password():
    """User, host, port, path and query stay readable; the password becomes ***."""
    assert redact_url("amqp://guest:pw@mq:5672/%2F?x=1") == "amqp://guest:***@mq:5672/%2F?x=1"
    assert redact_url("redis://:pw@cache:6379/0") == "redis://:***@cache:6379/0"
    assert redact_url("sqlite:///./var/cerniq.db") == "sqlite:///./var/cerniq.db"


@pytest.mark.parametrize(
    ("environ", "embedded"),
    [
        ({}, True),
        ({"CERNIQ_DATABASE_URL": "sqlite:////tmp/x.db"}, True),
        ({"CERNIQ_DATABASE_URL": "postgresql://h/db"}, False),
        ({"CERNIQ_REDIS_URL": "redis://h"}, False),
        ({"CERNIQ_BROKER_URL": "amqp://h"}, False),
    ],
)
def test_embedded_means_sqlite_without_redis_or_broker(environ, embedded):
    """Only SQLite with in-process quota and jobs counts as the embedded mode."""
    assert Settings.from_env(environ).embedded is embedded


def test_a_channel_is_live_once_its_provider_has_a_key():
    """A key makes its own provider live (by channel or provider name); the others stay sandbox."""
    settings = Settings.from_env({"RESEND_API_KEY": "re_1"})
    assert settings.channel_is_live("EMAIL_WARM")
    assert settings.channel_is_live("resend")
    assert not settings.channel_is_live("WHATSAPP")
    assert not settings.channel_is_live("instantly")
    with pytest.raises(KeyError, match="SMS"):
        settings.channel_is_live("SMS")


def test_every_documented_default_base_url_is_https():
    """The providers' public endpoints are the defaults, all over TLS."""
    assert set(DEFAULT_BASE_URLS) == {"timelinesai", "instantly", "resend"}
    assert all(url.startswith("https://") for url in DEFAULT_BASE_URLS.values())


@given(name=st.sampled_from(VARIABLES), value=st.text(max_size=60))
def test_any_value_loads_or_fails_with_a_settings_error_naming_the_variable(name, value):
    """Whatever text a variable holds, loading never crashes: it works or names the culprit."""
    environ = {name: value}
    if name in {"CERNIQ_LLM_URL", "CERNIQ_LLM_API_KEY", "CERNIQ_LLM_MODEL"}:
        environ = {**LLM, **environ}
    try:
        Settings.from_env(environ)
    except SettingsError as exc:
        message = str(exc)
        llm = ("CERNIQ_LLM_URL", "CERNIQ_LLM_API_KEY", "CERNIQ_LLM_MODEL")
        # Unsetting the LLM URL makes the model (still set) the variable to blame.
        assert message.startswith(llm if name in llm else name)
        assert len(message.splitlines()) == 1
        if name in SECRETS and len(value) >= 8:
            assert value not in message
