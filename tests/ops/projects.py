"""A plugin author's fresh project: an empty directory, gridbot as ``pip install`` lays it out, and
nothing of this repository's configuration (no pyproject.toml, conftest, asyncio mode or paths).

Tests run ``pytest`` and the ``gridbot`` command there as subprocesses, as a user would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # this environment's python and pytest (pytest-asyncio installed)


@dataclass(frozen=True)
class Project:
    path: Path
    env: dict[str, str]

    def write(self, name: str, text: str) -> Path:
        target = self.path / name
        target.write_text(text)
        return target

    def run(
        self, *argv: str, cwd: Path | None = None, stdin: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """``argv`` in this environment, in the project (or ``cwd``); its output as text."""
        return subprocess.run(
            list(argv),
            cwd=cwd or self.path,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def pytest(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``pytest`` as the author types it: no options of ours, nothing configured."""
        return self.run(str(BIN / "pytest"), *args)

    def outcomes(self, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
        """Run pytest with a JUnit report; each test's name -> "passed", or its failure text."""
        report = self.path.parent / f"{self.path.name}-report.xml"
        done = self.pytest(f"--junitxml={report}", *args)
        found: dict[str, str] = {}
        for case in ET.parse(report).getroot().iter("testcase"):
            problems = [c for c in case if c.tag in ("failure", "error")]
            text = "\n".join(f"{c.get('message', '')}\n{c.text or ''}" for c in problems)
            found[case.get("name", "")] = text or "passed"
        return done, found


def fresh_project(tmp_path: Path) -> Project:
    """An empty project directory, and an environment where gridbot is installed and on PATH."""
    site = tmp_path / "site-packages"
    site.mkdir()
    (site / "gridbot").symlink_to(ROOT / "gridbot")
    (site / "gridbot_plugins").symlink_to(ROOT / "plugins")  # setuptools installs plugins/ so
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    command = bin_dir / "gridbot"
    command.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m gridbot.cli "$@"\n')
    command.chmod(0o755)
    path = tmp_path / "project"
    path.mkdir()
    env = {
        "PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(site),  # where pip would have put gridbot
        "LANG": "C.UTF-8",
    }
    return Project(path, env)
