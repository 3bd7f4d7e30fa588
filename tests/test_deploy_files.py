"""The deployment recipes, read as a tool would read them (Docker cannot run here): the
Dockerfile, compose.yaml with its Caddyfile, and the systemd units under deploy/.

What matters is checked: a non-root final stage with no build tools that installs only the
wheel, a health check on /health at the exposed port, migrations as their own one-shot
command, every command line a valid ``lwa-accounts`` invocation, and every
``LWA_ACCOUNTS_*`` name a real setting whose values validate."""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from lwa_accounts.cli import build_parser
from lwa_accounts.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
SYSTEMD = ROOT / "deploy" / "systemd"
BUILD_TOOLS = re.compile(
    r"\b(gcc|g\+\+|cc|clang|make|build-essential|apt-get|apt|apk|python3-dev|libpq-dev)\b"
)
SETTING_NAME = re.compile(r"\bLWA_ACCOUNTS_[A-Z0-9_]+\b")


def valid_command(argv: list[str]) -> None:
    """``argv`` (after the program name) parses as an ``lwa-accounts`` command line."""
    args = build_parser().parse_args(argv)  # SystemExit (a failed test) when invalid
    assert callable(args.handler)


def assert_settings_names(text: str) -> None:
    names = set(SETTING_NAME.findall(text))
    assert names
    fields = {f"LWA_ACCOUNTS_{name.upper()}" for name in Settings.model_fields}
    assert names - fields == set(), "names no setting reads"


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in [n for n in os.environ if n.startswith("LWA_ACCOUNTS_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


# ---- Dockerfile ------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"no {keyword} in stage {self.name}"
        return found[-1]


def parse_dockerfile(text: str) -> list[Stage]:
    """Instructions per stage: comments dropped, continuation lines joined, ARG defaults
    declared before the first FROM substituted into FROM lines."""
    logical, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "a continuation line ends the file"
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            words = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], rest).split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif not stages:
            assert keyword == "ARG", f"{keyword} before the first FROM"
            key, _, default = rest.partition("=")
            args[key] = default
        else:
            stages[-1].instructions.append((keyword, rest))
    return stages


def exec_form(args: str) -> list[str]:
    value = yaml.safe_load(args)  # a JSON array is YAML too
    assert isinstance(value, list), f"not the exec form: {args}"
    return [str(part) for part in value]


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


def test_the_image_is_built_in_one_stage_and_runs_from_another(stages: list[Stage]) -> None:
    builder, final = stages[0], stages[-1]
    assert len(stages) == 2
    assert builder.name == "builder"
    for stage in stages:
        assert re.fullmatch(r"python:3\.11-slim(-\w+)?", stage.base)
    assert any("-m build --wheel" in run for run in builder.all("RUN"))
    assert any("build==" in run for run in builder.all("RUN"))  # the build tool pinned
    # The final stage gets only the built wheel, never the source.
    assert final.all("COPY") == ["--from=builder /dist/ /tmp/dist/"]
    assert any("pip install --no-cache-dir /tmp/dist/*.whl" in run for run in final.all("RUN"))


def test_the_final_stage_has_no_build_tools(stages: list[Stage]) -> None:
    final = stages[-1]
    for run in final.all("RUN"):
        assert not BUILD_TOOLS.search(run), run
    assert BUILD_TOOLS.search("apt-get install -y build-essential gcc")  # the check can fail


def test_the_final_stage_runs_as_a_non_root_user(stages: list[Stage]) -> None:
    user = stages[-1].last("USER").split(":")[0]
    assert user not in ("root", "0", "")
    assert any("useradd --system --uid 10001 --gid lwa" in run for run in stages[-1].all("RUN"))
    assert user == "lwa"


def test_the_image_serves_on_its_exposed_port_and_checks_health(stages: list[Stage]) -> None:
    final = stages[-1]
    (port,) = final.last("EXPOSE").split()
    entrypoint, command = exec_form(final.last("ENTRYPOINT")), exec_form(final.last("CMD"))
    assert entrypoint == ["lwa-accounts"]
    valid_command(command)
    assert command[0] == "serve"
    assert command[command.index("--port") + 1] == port
    assert command[command.index("--host") + 1] == "0.0.0.0"
    health = final.last("HEALTHCHECK")
    assert "--interval=" in health
    probe = exec_form(health.split("CMD", 1)[1])
    assert f"http://127.0.0.1:{port}/health" in " ".join(probe)
    assert final.last("STOPSIGNAL") == "SIGTERM"


def test_the_dockerfile_names_only_real_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    text = DOCKERFILE.read_text()
    assert_settings_names(text)
    with pytest.raises(AssertionError, match="names no setting reads"):
        assert_settings_names("LWA_ACCOUNTS_NOT_A_SETTING=1")  # the check can fail
    env = dict(re.findall(r"(LWA_ACCOUNTS_\w+)=(\S+)", text))
    assert env["LWA_ACCOUNTS_ENV"] == "production"
    production = {  # what the operator adds (compose.yaml, the env file)
        "LWA_ACCOUNTS_SECRET_KEY": "x" * 48,
        "LWA_ACCOUNTS_LWA_CLIENT_ID": "amzn1.application-oa2-client.x",
        "LWA_ACCOUNTS_LWA_CLIENT_SECRET": "secret",
        "LWA_ACCOUNTS_PUBLIC_URL": "https://accounts.example.com",
        "LWA_ACCOUNTS_DATABASE_URL": "postgresql+asyncpg://lwa@db/lwa",
    }
    settings_from({**env, **production}, monkeypatch)


# ---- compose.yaml ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _interpolated(value: str) -> str:
    """Compose's ${NAME:?message} / ${NAME:-default} with a sample value for each name."""
    samples = {
        "PUBLIC_URL": "https://accounts.example.com",
        "SECRET_KEY": "s" * 48,
        "POSTGRES_PASSWORD": "pw",
        "LWA_CLIENT_ID": "amzn1.application-oa2-client.web",
        "LWA_CLIENT_SECRET": "secret",
        "SMTP_URL": "smtp://mailer:pw@mail.example.com:587?starttls=1",
        "MAIL_FROM": "no-reply@example.com",
    }
    return re.sub(r"\$\{(\w+)(?::[?-][^}]*)?\}", lambda m: samples.get(m.group(1), ""), str(value))


def _apps(services: dict[str, Any]) -> dict[str, Any]:
    return {
        name: service
        for name, service in services.items()
        if service.get("image") == "lwa-accounts:latest" and "command" not in service
    }


def test_compose_runs_two_app_instances_after_a_one_shot_migration(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    apps = _apps(services)
    assert sorted(apps) == ["app1", "app2"]
    migrate = services["migrate"]
    assert migrate["image"] == "lwa-accounts:latest"
    assert migrate["command"] == ["db", "upgrade"]
    valid_command(migrate["command"])
    assert migrate["restart"] == "no"
    assert migrate["healthcheck"] == {"disable": True}
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for app in apps.values():
        assert app["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert app["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "ports" not in app  # reached only through the proxy
        assert app["environment"] == migrate["environment"]


def test_compose_has_postgresql_and_redis_with_health_checks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["image"].startswith("redis:")
    assert "ping" in services["redis"]["healthcheck"]["test"]
    env = _apps(services)["app1"]["environment"]
    database = urlsplit(_interpolated(env["LWA_ACCOUNTS_DATABASE_URL"]))
    assert database.scheme == "postgresql+asyncpg"
    assert database.hostname == "postgres"
    assert database.path == "/" + services["postgres"]["environment"]["POSTGRES_DB"]
    assert database.username == services["postgres"]["environment"]["POSTGRES_USER"]
    assert urlsplit(env["LWA_ACCOUNTS_REDIS_URL"]).hostname == "redis"


def test_compose_puts_the_proxy_in_front_and_only_it_is_trusted(compose: dict[str, Any]) -> None:
    services = compose["services"]
    proxy = services["proxy"]
    assert proxy["image"].startswith("caddy:")
    assert "80:80" in proxy["ports"]
    address = proxy["networks"]["backend"]["ipv4_address"]
    subnet = compose["networks"]["backend"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet)
    for app in _apps(services).values():
        assert app["environment"]["LWA_ACCOUNTS_TRUSTED_PROXIES"] == address
        assert proxy["depends_on"][next(iter(_apps(services)))]["condition"] == "service_healthy"
    # The Caddyfile mounted into the proxy sends traffic to both apps on the image's port.
    (mount,) = [v for v in proxy["volumes"] if v.endswith(":/etc/caddy/Caddyfile:ro")]
    caddyfile = ROOT / mount.split(":")[0]
    upstreams = re.search(r"reverse_proxy ([^{]+)\{", caddyfile.read_text())
    assert upstreams is not None
    assert upstreams.group(1).split() == ["app1:8000", "app2:8000"]
    assert "health_uri /health" in caddyfile.read_text()


def test_compose_gives_requests_time_to_finish_on_stop(compose: dict[str, Any]) -> None:
    for app in _apps(compose["services"]).values():
        grace = int(app["environment"]["LWA_ACCOUNTS_SHUTDOWN_GRACE_SECONDS"])
        assert int(app["stop_grace_period"].rstrip("s")) > grace


def test_compose_names_only_real_settings_and_they_validate(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_settings_names(COMPOSE.read_text())
    env = _apps(compose["services"])["app1"]["environment"]
    settings = settings_from({k: _interpolated(v) for k, v in env.items()}, monkeypatch)
    assert settings.env == "production"
    assert settings.workers == 2
    assert not settings.amazon_emulated
    assert settings.redis_url is not None
    assert settings.smtp is not None
    assert settings.smtp.tls == "starttls"
    assert settings.mail_from == "no-reply@example.com"


# ---- systemd ---------------------------------------------------------------------------


def unit(path: Path) -> dict[str, list[str]]:
    """``Section.Key`` -> every value given (systemd allows repeats)."""
    entries: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return entries


def test_the_systemd_unit_serves_with_a_valid_command_line() -> None:
    service = unit(SYSTEMD / "lwa-accounts.service")
    (exec_start,) = service["Service.ExecStart"]
    argv = shlex.split(exec_start)
    assert argv[0] == "/opt/lwa-accounts/bin/lwa-accounts"
    valid_command(argv[1:])
    assert argv[1] == "serve"
    assert argv[argv.index("--forwarded-allow-ips") + 1] == "127.0.0.1"
    assert service["Service.KillMode"] == ["mixed"]  # SIGTERM to the parent, which drains
    assert (
        int(service["Service.TimeoutStopSec"][0])
        > Settings.model_fields["shutdown_grace_seconds"].default
    )
    assert service["Service.User"] != ["root"]
    with pytest.raises(SystemExit):
        valid_command(["serve", "--workers", "none"])  # the check can fail


def test_the_systemd_migration_is_a_one_shot_db_upgrade() -> None:
    migrate = unit(SYSTEMD / "lwa-accounts-migrate.service")
    assert migrate["Service.Type"] == ["oneshot"]
    (exec_start,) = migrate["Service.ExecStart"]
    argv = shlex.split(exec_start)
    assert argv[1:] == ["db", "upgrade"]
    valid_command(argv[1:])
    service = unit(SYSTEMD / "lwa-accounts.service")
    assert migrate["Service.EnvironmentFile"] == service["Service.EnvironmentFile"]


def test_the_systemd_environment_file_names_only_real_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = (SYSTEMD / "lwa-accounts.env.example").read_text()
    assert_settings_names(text)
    env = dict(re.findall(r"^(LWA_ACCOUNTS_\w+)=(.*)$", text, flags=re.MULTILINE))
    env.update(
        LWA_ACCOUNTS_SECRET_KEY="s" * 48,
        LWA_ACCOUNTS_LWA_CLIENT_SECRET="secret",
    )
    settings = settings_from(env, monkeypatch)
    assert settings.env == "production"
    assert settings.mail_from is not None
