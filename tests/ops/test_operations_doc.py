"""docs/operations.md cannot drift from the code: every command in its ```sh blocks is run,
by this file (blocks of ``export`` lines: they must load as Settings) or by the test the
mappings below name, which must exist (``COMMANDS`` by command prefix; ``ASSIGNMENTS`` for
a section's blocks of bare ``LWA_ACCOUNTS_NAME=value`` lines, an environment file rather
than a script); every setting and route path the operations sections mention exists; and
the Amazon registration steps match what the service sends.

Sections other engineers fill may not exist yet on every branch: their commands are
listed (a skip naming them) until their section joins ``STRICT_SECTIONS`` with its
mapping entries; the sections in ``STRICT_SECTIONS`` fail on any command nobody runs.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import SecretStr
from starlette.routing import Mount

from lwa_accounts import settings_doc
from lwa_accounts.settings import Settings
from lwa_accounts.testing import offline_settings
from lwa_accounts.web.app import create_app
from tests.ops.docs import Block, blocks, route_paths, run_block, sections, setting_names, text
from tests.ops.harness import CSRF_RE, PASSWORD
from tests.security.routes import _walk

AMAZON = "Register the web and device security profiles at Amazon"
SCALE_OUT = "Scale out: N hosts on one PostgreSQL and Redis"
BACKUP = "Back up and restore"
RUNBOOK = "Incident runbook"
PRODUCTION = "Production mode and configuration"
REFERENCE = "Settings reference"
OPERATOR = "Operator's command line"
DEPLOY = "Deploy"
MAIL = "Outgoing mail"
STRICT_SECTIONS = (
    AMAZON,
    SCALE_OUT,
    BACKUP,
    RUNBOOK,
    PRODUCTION,
    REFERENCE,
    OPERATOR,
    DEPLOY,
    MAIL,
)

# Command prefix -> the test that runs it. Commands are matched on whole words, the
# longest prefix first. Blocks of `export` lines are run here instead.
SQLITE_BACKUP = (
    "tests/ops/test_backup_restore.py::"
    "test_sqlite_backup_while_serving_and_restore_into_a_fresh_data_dir"
)
POSTGRES_BACKUP = (
    "tests/ops/test_backup_restore.py::"
    "test_postgres_dump_while_serving_and_restore_into_a_fresh_database"
)
TWO_HOSTS = (
    "tests/ops/test_scale_out.py::"
    "test_a_bearer_session_made_on_a_works_on_b_and_sign_out_on_b_ends_it_on_a"
)
STUFFING = (
    "tests/ops/test_runbook.py::test_credential_stuffing_from_one_address_is_throttled_and_audited"
)
CHECK_CONFIG = "tests/config/test_operations_doc.py::test_the_check_config_commands_run"
REGENERATE = (
    "tests/config/test_settings_doc.py::"
    "test_a_stale_block_is_caught_and_the_command_rewrites_only_the_block"
)
ADMIN = "tests/cli/test_admin_doc.py::test_every_admin_block_runs_as_written"
MINIMAL_ENV = "tests/config/test_operations_doc.py::test_the_minimal_production_environment_is_fit"
COMMANDS: dict[str, str] = {
    "mkdir -p backup": SQLITE_BACKUP,
    'mkdir -p "$LWA_ACCOUNTS_DATA_DIR"': SQLITE_BACKUP,
    "sqlite3": SQLITE_BACKUP,
    "python3 -c": SQLITE_BACKUP,
    "rm -f": SQLITE_BACKUP,
    "cp backup/lwa-accounts.db": SQLITE_BACKUP,
    "pg_dump": POSTGRES_BACKUP,
    "createdb": POSTGRES_BACKUP,
    "pg_restore": POSTGRES_BACKUP,
    'LWA_ACCOUNTS_DATABASE_URL="postgresql+asyncpg://$PGUSER@$PGHOST:$PGPORT/$RESTORED_DB"'
    " lwa-accounts db upgrade": POSTGRES_BACKUP,
    "lwa-accounts db upgrade": TWO_HOSTS,  # the fixture migrates once, then starts A and B
    "lwa-accounts db current": TWO_HOSTS,
    "lwa-accounts serve": TWO_HOSTS,
    "lwa-accounts audit --kind signin.": STUFFING,
    "lwa-accounts audit --kind session.": STUFFING,
    "lwa-accounts check-config": CHECK_CONFIG,
    "lwa-accounts check-config --settings-reference --write": REGENERATE,
    "lwa-accounts admin": ADMIN,
    "lwa-accounts mail test": "tests/mail/test_cli.py::"
    "test_the_test_message_is_sent_now_and_the_answer_printed",
}

# Deploy: Docker and systemd do not run on the test machine, so their commands map to the
# tests that read the files those commands use (tests/test_deploy_files.py); the wheel in
# a fresh venv is what `make smoke-install` does in CI (tests/test_smoke_install_ci.py
# checks .ci/run calls it and what it runs).
DEPLOY_FILES = "tests/test_deploy_files.py::"
SMOKE = "tests/test_smoke_install_ci.py::test_ci_installs_the_wheel_alone_migrates_and_serves"
COMMANDS |= {
    "docker build": DEPLOY_FILES + "test_the_image_is_built_in_one_stage_and_runs_from_another",
    "docker run": DEPLOY_FILES + "test_the_image_serves_on_its_exposed_port_and_checks_health",
    "cp deploy/compose.env.example .env": DEPLOY_FILES
    + "test_compose_names_only_real_settings_and_they_validate",
    "docker compose up": DEPLOY_FILES
    + "test_compose_runs_two_app_instances_after_a_one_shot_migration",
    "docker compose ps": DEPLOY_FILES + "test_compose_has_postgresql_and_redis_with_health_checks",
    "python3 -m build --wheel": SMOKE,
    "python3.11 -m venv": SMOKE,
    "/opt/lwa-accounts/bin/pip install": SMOKE,
    "useradd": DEPLOY_FILES + "test_the_systemd_unit_serves_with_a_valid_command_line",
    "install -d": DEPLOY_FILES + "test_the_systemd_environment_file_names_only_real_settings",
    "install -m 0640": DEPLOY_FILES + "test_the_systemd_environment_file_names_only_real_settings",
    "install -m 0644": DEPLOY_FILES + "test_the_systemd_unit_serves_with_a_valid_command_line",
    "systemctl daemon-reload": DEPLOY_FILES
    + "test_the_systemd_unit_serves_with_a_valid_command_line",
    "systemctl start lwa-accounts-migrate": DEPLOY_FILES
    + "test_the_systemd_migration_is_a_one_shot_db_upgrade",
    "systemctl enable --now lwa-accounts": DEPLOY_FILES
    + "test_the_systemd_unit_serves_with_a_valid_command_line",
}

# Section -> the test that applies its blocks of bare `LWA_ACCOUNTS_NAME=value` lines (an
# environment file, not a script: placeholders like `<its client secret>` are not shell).
ASSIGNMENTS: dict[str, str] = {PRODUCTION: MINIMAL_ENV}

# Names that look like settings or routes in the prose but are something else.
NOT_SETTINGS: set[str] = set()
# File-system paths of the venv/systemd deployment, not routes.
NOT_ROUTES: set[str] = {
    "/etc/lwa-accounts/lwa-accounts.env",
    "/opt/lwa-accounts",
    "/var/lib/lwa-accounts",
}
# Sections that speak of the environment as a whole (`LWA_ACCOUNTS_*`), naming no setting.
NAMES_NO_SETTING = {OPERATOR}

_EXPORT = re.compile(r"^export ([A-Za-z_][A-Za-z0-9_]*)=")
# One whole line `LWA_ACCOUNTS_NAME=value`, the value without spaces but for `<placeholders>`
# (so `NAME=value some-command` is a command, not an assignment).
_ASSIGNMENT = re.compile(r"^LWA_ACCOUNTS_[A-Z0-9_]+=(?:<[^<>\n]*>|[^\s<>])*$")
_REFERENCE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def all_blocks() -> Iterator[tuple[str, Block]]:
    for section, body in sections().items():
        for block in blocks(body):
            yield section, block


def is_export_block(block: Block) -> bool:
    return bool(block.commands) and all(_EXPORT.match(c) for c in block.commands)


def is_assignment_block(block: Block) -> bool:
    return bool(block.commands) and all(_ASSIGNMENT.match(c) for c in block.commands)


def runner_of(command: str) -> str | None:
    for prefix in sorted(COMMANDS, key=len, reverse=True):
        if command == prefix or command.startswith(prefix + " "):
            return COMMANDS[prefix]
    return None


def unrun_commands(section: str, block: Block) -> list[str]:
    """The block's commands no test runs: not an ``export`` block (run here), not an
    assignment block of a section in ``ASSIGNMENTS``, and no ``COMMANDS`` prefix."""
    if is_export_block(block) or (section in ASSIGNMENTS and is_assignment_block(block)):
        return []
    return [command for command in block.commands if runner_of(command) is None]


def test_the_page_has_every_section_this_file_checks() -> None:
    assert set(STRICT_SECTIONS) <= set(sections()), sorted(sections())
    for name in STRICT_SECTIONS:
        # The generated reference's markers are comments too, and no placeholder.
        body = sections()[name].replace(settings_doc.START, "").replace(settings_doc.END, "")
        assert "<!--" not in body, f"{name} still has its placeholder"


def test_every_command_in_a_strict_section_is_run_by_a_test() -> None:
    unrun = [
        (section, command)
        for section, block in all_blocks()
        if section in STRICT_SECTIONS
        for command in unrun_commands(section, block)
    ]
    assert not unrun, "commands no test runs (add them to COMMANDS): " + repr(unrun)


def test_commands_of_other_sections_are_listed_until_mapped() -> None:
    unrun = [
        (section, command)
        for section, block in all_blocks()
        if section not in STRICT_SECTIONS
        for command in unrun_commands(section, block)
    ]
    if unrun:
        pytest.skip(f"{len(unrun)} commands in sections not yet checked: {unrun!r}")


def assert_test_exists(node: str) -> None:
    path, _, name = node.partition("::")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    assert callable(getattr(module, name.split("[")[0], None)), f"no test {node}"


def test_every_mapped_test_exists_and_every_mapping_is_used() -> None:
    commands = [c for _, block in all_blocks() for c in block.commands]
    for prefix, node in COMMANDS.items():
        assert_test_exists(node)
        assert any(c == prefix or c.startswith(prefix + " ") for c in commands), (
            f"COMMANDS maps {prefix!r}, which the page no longer has"
        )
    for section, node in ASSIGNMENTS.items():
        assert_test_exists(node)
        assert any(is_assignment_block(b) for b in blocks(sections()[section])), (
            f"ASSIGNMENTS maps {section!r}, which has no block of assignments any more"
        )


def test_an_assignment_counts_only_in_a_mapped_section_and_a_block_of_its_own() -> None:
    lines = Block("x", "sh", "LWA_ACCOUNTS_ENV=production\nLWA_ACCOUNTS_PUBLIC_URL=https://a\n")
    assert is_assignment_block(lines)
    assert unrun_commands(PRODUCTION, lines) == []
    assert unrun_commands(BACKUP, lines) == lines.commands  # no mapping for that section
    mixed = Block("x", "sh", "LWA_ACCOUNTS_ENV=production\nrm -rf /srv/data\n")
    assert not is_assignment_block(mixed)
    assert unrun_commands(PRODUCTION, mixed) == mixed.commands  # each must be mapped then
    prefixed = Block("x", "sh", "LWA_ACCOUNTS_ENV=production lwa-accounts db downgrade\n")
    assert unrun_commands(PRODUCTION, prefixed) == prefixed.commands


def test_the_mapped_tests_are_collected_by_pytest() -> None:
    nodes = sorted(set(COMMANDS.values()) | set(ASSIGNMENTS.values()))
    root = Path(__file__).resolve().parents[2]
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:randomly", *nodes],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    listed = set(collected.stdout.split())
    assert all(node in listed for node in nodes), collected.stdout + collected.stderr


# ---- blocks of `export` lines: they load as Settings ---------------------------------------


def exported_settings(block: Block, tmp_path: Path) -> dict[str, str]:
    """Run an ``export`` block with bash (references to other variables filled with
    placeholders) and return the ``LWA_ACCOUNTS_*`` environment it leaves."""
    placeholders = {
        name: f"placeholder-{name.lower()}-0123456789abcdef0123456789abcdef"
        for name in _REFERENCE.findall(block.text)
    }
    script = block.text + '\npython3 -c "import json, os; print(json.dumps(dict(os.environ)))"\n'
    done = run_block(Block(block.heading, "sh", script), cwd=tmp_path, env=placeholders)
    assert done.returncode == 0, done.stderr
    environment: dict[str, str] = json.loads(done.stdout)
    return {k: v for k, v in environment.items() if k.startswith("LWA_ACCOUNTS_")}


def export_blocks() -> list[Block]:
    return [block for _, block in all_blocks() if is_export_block(block)]


@pytest.mark.parametrize("index", range(len(export_blocks())))
def test_export_blocks_set_real_settings_that_load(
    index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    block = export_blocks()[index]
    exported = exported_settings(block, tmp_path)
    names = {_EXPORT.match(c).group(1) for c in block.commands}  # type: ignore[union-attr]
    assert names == set(exported), (names, set(exported))
    for name in names:
        assert name.removeprefix("LWA_ACCOUNTS_").lower() in Settings.model_fields, name
    for name in [n for n in os.environ if n.startswith("LWA_ACCOUNTS_")]:
        monkeypatch.delenv(name)
    for name, value in exported.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LWA_ACCOUNTS_DATA_DIR", str(tmp_path))
    settings = Settings()  # the page's values are valid together (production rules too)
    for name, value in exported.items():
        assert shown(getattr(settings, name.removeprefix("LWA_ACCOUNTS_").lower())) == value


def shown(value: object) -> str:
    """A setting's value as the environment spells it."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


# ---- names in the prose ----------------------------------------------------------------------


def known_paths(tmp_path: Path) -> set[str]:
    app = create_app(offline_settings(tmp_path))  # routes only: no lifespan, no database
    paths = {path for path, _ in _walk(app.routes)}
    return paths | {route.path for route in app.routes if isinstance(route, Mount)}


@pytest.mark.parametrize("section", STRICT_SECTIONS)
def test_every_setting_named_in_the_section_exists(section: str) -> None:
    names = setting_names(sections()[section]) - NOT_SETTINGS
    if section not in NAMES_NO_SETTING:
        assert names, "the section names no setting at all?"
    unknown = sorted(
        n for n in names if n.removeprefix("LWA_ACCOUNTS_").lower() not in Settings.model_fields
    )
    assert not unknown, f"{section} names settings that do not exist: {unknown}"


@pytest.mark.parametrize("section", STRICT_SECTIONS)
def test_every_route_named_in_the_section_exists(section: str, tmp_path: Path) -> None:
    body = sections()[section]
    paths = route_paths(body) | {
        urlsplit(url).path for url in re.findall(r"https://accounts\.example\.com/[^\s`)>,]*", body)
    }
    unknown = sorted(paths - known_paths(tmp_path) - NOT_ROUTES)
    assert not unknown, f"{section} names paths the app does not serve: {unknown}"


# ---- the Amazon registration steps match what the service sends ----------------------------


def amazon_block(variable: str) -> Block:
    found = [b for b in blocks(sections()[AMAZON]) if variable in b.text]
    assert found, variable
    return found[0]


def documented_return_url() -> str:
    body = sections()[AMAZON]
    step = body[body.index("**Allowed Return URLs**") :]
    found = re.search(r"`(https://[^`]+)`", step)
    assert found, step[:300]
    return found.group(1)


@pytest.fixture
def documented(tmp_path: Path) -> dict[str, str]:
    """The Amazon section's configuration block, as bash leaves the environment."""
    return exported_settings(amazon_block("LWA_ACCOUNTS_LWA_CLIENT_ID="), tmp_path)


def settings_of(exported: dict[str, str], tmp_path: Path) -> Settings:
    fields = {k.removeprefix("LWA_ACCOUNTS_").lower(): v for k, v in exported.items()}
    return offline_settings(tmp_path, **fields)


async def test_the_documented_configuration_sends_the_registered_return_url(
    documented: dict[str, str], tmp_path: Path
) -> None:
    settings = settings_of(documented, tmp_path)
    assert not settings.amazon_emulated
    callback = documented_return_url()
    assert callback == documented["LWA_ACCOUNTS_PUBLIC_URL"] + "/auth/amazon/callback"
    origin = re.search(r"\*\*Allowed Origins\*\*: `([^`]+)`", sections()[AMAZON])
    assert origin
    assert origin.group(1) == documented["LWA_ACCOUNTS_PUBLIC_URL"]

    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as web:
            started = await web.get("/auth/amazon/start")
            trips = [started]
            # Attaching from the account page is a trip of its own, with the same return URL.
            registered = await web.post(
                "/api/v1/accounts",
                json={
                    "username": "ada",
                    "email": "ada@example.com",
                    "name": "Ada",
                    "password": PASSWORD,
                },
            )
            assert registered.status_code == 201, registered.text
            page = await web.get("/signin")
            csrf = CSRF_RE.search(page.text)
            assert csrf
            fields = {"username": "ada", "password": PASSWORD, "next": "/account"}
            signed_in = await web.post("/signin", data={**fields, "csrf_token": csrf.group(1)})
            assert signed_in.status_code == 303, signed_in.text
            account = await web.get("/account")
            csrf = CSRF_RE.search(account.text)
            assert csrf
            trips.append(await web.post("/account/amazon/link", data={"csrf_token": csrf.group(1)}))
    for trip in trips:
        assert trip.status_code == 303, trip.text
        location = urlsplit(trip.headers["location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == (
            "https://www.amazon.com/ap/oa"  # LWA_ACCOUNTS_LWA_REGION=na
        )
        query = parse_qs(location.query)
        assert query["redirect_uri"] == [callback]
        assert query["client_id"] == [documented["LWA_ACCOUNTS_LWA_CLIENT_ID"]]
        assert query["scope"] == ["profile postal_code"]  # LWA_ACCOUNTS_LWA_SCOPE's default


def test_the_documented_ids_go_where_the_table_says(
    documented: dict[str, str], tmp_path: Path
) -> None:
    settings = settings_of(documented, tmp_path)
    web = documented["LWA_ACCOUNTS_LWA_CLIENT_ID"]
    device = documented["LWA_ACCOUNTS_LWA_DEVICE_CLIENT_ID"]
    assert (settings.web_client_id, settings.device_client_id) == (web, device)
    assert settings.web_client_secret == documented["LWA_ACCOUNTS_LWA_CLIENT_SECRET"]
    assert settings.allowed_client_ids == {web, device}  # the default allow-list
    without_device = {k: v for k, v in documented.items() if "DEVICE" not in k}
    assert settings_of(without_device, tmp_path).device_client_id == web


def test_the_documented_allow_list_replaces_the_default(
    documented: dict[str, str], tmp_path: Path
) -> None:
    listed = exported_settings(amazon_block("LWA_ACCOUNTS_LWA_ALLOWED_CLIENT_IDS="), tmp_path)
    ids = listed["LWA_ACCOUNTS_LWA_ALLOWED_CLIENT_IDS"].split(",")
    settings = settings_of({**documented, **listed}, tmp_path)
    assert settings.allowed_client_ids == set(ids)
    assert {settings.web_client_id, settings.device_client_id} < settings.allowed_client_ids
    only_third = settings_of(
        {**documented, "LWA_ACCOUNTS_LWA_ALLOWED_CLIENT_IDS": ids[-1]}, tmp_path
    )
    assert settings.web_client_id not in only_third.allowed_client_ids


def test_commands_are_parsed_across_continuations_and_comments() -> None:
    from tests.ops.docs import commands_of

    script = "# a comment\n\nexport A=1\nlwa-accounts serve \\\n  --port 8000\n"
    assert commands_of(script) == ["export A=1", "lwa-accounts serve --port 8000"]
    assert shlex.split(commands_of(script)[1])[:2] == ["lwa-accounts", "serve"]
    assert runner_of("lwa-accounts serve --host 0.0.0.0") == COMMANDS["lwa-accounts serve"]
    assert runner_of("lwa-accounts served") is None  # whole words only


def test_the_page_is_the_repository_copy() -> None:
    assert text().startswith("# Operations\n")


def test_the_pool_size_the_scale_out_section_gives_is_the_engines() -> None:
    from lwa_accounts.store.engine import create_engine

    found = re.search(r"default: (\d+) connections, (\d+) more under load", sections()[SCALE_OUT])
    assert found, "the pool sentence moved"
    defaults = Settings.model_fields
    engine = create_engine(
        "postgresql+asyncpg://nobody@127.0.0.1/never-connected",
        pool_size=defaults["db_pool_size"].default,
        max_overflow=defaults["db_max_overflow"].default,
    )
    pool = engine.pool
    assert (pool.size(), pool._max_overflow) == (int(found.group(1)), int(found.group(2)))  # type: ignore[attr-defined]
    per_process = int(found.group(1)) + int(found.group(2))
    assert f"exceed {per_process} times the number of server processes" in " ".join(
        sections()[SCALE_OUT].split()
    )
