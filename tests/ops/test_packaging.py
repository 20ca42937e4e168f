"""The Dockerfile and docker-compose.yml: valid Compose, and what operations rely on.

No Docker engine runs here. Compose validity is checked by a real Compose implementation's
``config`` command (``docker compose`` when the plugin exists, else Debian's ``docker-compose``),
which validates against the Compose schema offline; the structural checks read the YAML.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG_PATH = "/etc/gridbot/gridbot.toml"


def _compose_command() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    command = _compose_command()
    if command is None:
        if os.environ.get("GRIDBOT_REQUIRE_COMPOSE") == "1":
            pytest.fail("no `docker compose` and no `docker-compose` (apt-get install docker-compose)")
        pytest.skip("no Compose implementation here (apt-get install docker-compose to run this)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GRIDBOT_CONFIG"))}
    result = subprocess.run(
        [*command, "-f", str(ROOT / "docker-compose.yml"), "--project-directory", str(ROOT), "config", "-q"],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.fixture
def compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="pyyaml (a dev dependency) reads the compose file")
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def _readyz_check(check: dict[str, Any]) -> bool:
    return any("/readyz" in part for part in check["test"])


def test_compose_runs_redis_with_persistence_and_a_health_check(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    assert (
        "--appendonly" in redis["command"]
        and redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    )
    assert any(v.endswith(":/data") and v.split(":")[0] in compose["volumes"] for v in redis["volumes"])
    assert "ping" in redis["healthcheck"]["test"]
    assert redis["restart"] in ("always", "unless-stopped")


def test_compose_runs_gridbot_with_a_read_only_config_tokens_from_the_environment_and_readyz(
    compose: dict[str, Any],
) -> None:
    gridbot = compose["services"]["gridbot"]
    mount = next(v for v in gridbot["volumes"] if v["target"] == CONFIG_PATH)
    assert mount["read_only"] is True
    # Tokens are passed by name from the operator's environment; no value is written in the file.
    assert all("=" not in entry for entry in gridbot["environment"])
    assert not re.search(r"(xox[abprs]|xapp)-[A-Za-z0-9]", (ROOT / "docker-compose.yml").read_text())
    assert _readyz_check(gridbot["healthcheck"])
    assert gridbot["restart"] in ("always", "unless-stopped", "on-failure")
    assert gridbot["depends_on"]["redis"]["condition"] == "service_healthy"
    assert all(p.startswith("127.0.0.1:") for p in gridbot.get("ports", []))  # not on every interface


def test_dockerfile_is_slim_non_root_and_runs_the_daemon_checked_on_readyz() -> None:
    lines = [ln.strip() for ln in (ROOT / "Dockerfile").read_text().splitlines()]
    bases = [ln.split()[1] for ln in lines if ln.startswith("FROM ")]
    assert bases and all(b.startswith("python:3.11-slim") for b in bases)
    users = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(ln.startswith("RUN pip install") and ln.endswith(" .") for ln in lines)  # the package itself
    text = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["gridbot"]' in text and f'CMD ["run", "--config", "{CONFIG_PATH}"]' in text
    assert re.search(r"HEALTHCHECK .*\\\n.*/readyz", text)


def test_dockerignore_keeps_configs_and_env_files_out_of_the_image() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for pattern in (".git", ".venv", ".env", "*.toml", "config"):
        assert pattern in ignored
    assert "!pyproject.toml" in ignored


def test_every_package_of_gridbot_is_installed() -> None:
    """pyproject.toml lists packages by name: a new subpackage missing there imports from the
    source tree (and in this suite) but not from an installed wheel or the Docker image."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "gridbot").rglob("__init__.py")
    }
    assert on_disk - listed == set()
