"""docker-examples/: the compose file is valid, configures statefleet only through settings
that exist, and runs only commands and options the CLI has."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.docs.conftest import ROOT, load_gen

DOCKER = ROOT / "docker-examples"
COMPOSE = DOCKER / "docker-compose.yml"
APP_SERVICES = {"migrate", "leader", "worker", "ui"}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def statefleet_commands(service: dict[str, Any]) -> list[list[str]]:
    """The statefleet command lines a service runs (the image's entry point is statefleet;
    a ``sh -c`` entry point runs one or more, joined by ``&&``)."""
    command = service["command"]
    if service.get("entrypoint") == ["/bin/sh", "-c"]:
        script = " ".join(command)
        lines = [shlex.split(part) for part in script.split("&&")]
        for words in lines:
            assert words[0] == "statefleet", f"{words} does not run statefleet"
        return [words[1:] for words in lines]
    return [list(command)]


def test_services_volumes_and_health_checks() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", *APP_SERVICES}
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    redis = services["redis"]
    assert redis["command"][:3] == ["redis-server", "--appendonly", "yes"]
    assert "redis-data:/data" in redis["volumes"] and "healthcheck" in redis
    assert "healthcheck" in services["postgres"]
    assert services["worker"]["deploy"]["replicas"] == 3
    assert services["migrate"]["restart"] == "no"
    for name in APP_SERVICES - {"migrate"}:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert statefleet_commands(services["migrate"])[0] == ["db", "upgrade"]


def test_every_environment_variable_is_a_setting() -> None:
    known = load_gen().setting_env_vars()
    services = compose()["services"]
    used: set[str] = set()
    for name in APP_SERVICES:
        environment = services[name]["environment"]
        assert isinstance(environment, dict), f"{name}: environment must be a mapping"
        used |= set(environment)
    unknown = used - known
    assert not unknown, f"docker-compose.yml sets variables statefleet does not read: {unknown}"
    assert {"STATEFLEET_DATABASE_URL", "STATEFLEET_REDIS_URL"} <= used
    # ${VAR:-default} interpolations: statefleet's must exist too
    interpolated = set(re.findall(r"\$\{(STATEFLEET_[A-Z_]+)", COMPOSE.read_text()))
    assert interpolated and interpolated <= known


def test_every_command_and_option_exists() -> None:
    commands = load_gen().cli_commands()
    services = compose()["services"]
    checked = 0
    for name in sorted(APP_SERVICES):
        for words in statefleet_commands(services[name]):
            path = []
            for word in words:
                if word.startswith("-") or " ".join([*path, word]) not in commands:
                    break
                path.append(word)
            command = commands.get(" ".join(path))
            assert command is not None and path, f"{name}: no statefleet command in {words}"
            options = {o for p in command.params for o in getattr(p, "opts", [])}
            for word in words:
                if word.startswith("--"):
                    assert word in options, f"{name}: statefleet {' '.join(path)} has no {word}"
            checked += 1
    assert checked == 5


def test_dockerfile_copies_what_exists_and_runs_statefleet() -> None:
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    for sources in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for source in sources.split():
            assert (ROOT / source).exists(), f"Dockerfile copies a missing {source}"
    assert 'ENTRYPOINT ["statefleet"]' in text


def test_docker_compose_config_accepts_the_file() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("the docker CLI is not installed: `docker compose config` not run")
    version = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
    if version.returncode != 0:
        pytest.skip("the docker CLI has no compose plugin: `docker compose config` not run")
    done = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
