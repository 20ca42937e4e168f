"""The plugin guide (README.md, "Writing plugins"), followed literally in a fresh project.

Issue 16: the README's plugin and its test failed when copied word for word (the bare name
``"standup"`` was never loaded from a local module, and pytest said "async def functions are not
natively supported"), and the suite tested a copy under another name, so the README's text never
ran. Now its ``<!-- test: file NAME -->`` blocks are written, as they stand in README.md, into an
empty directory where gridbot is installed, and ``gridbot check-config`` and ``pytest`` run there
as subprocesses, with nothing configured.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ops.projects import Project, fresh_project
from ops.readme import marked, one


@pytest.fixture
def guide(tmp_path: Path) -> Project:
    project = fresh_project(tmp_path)
    files = marked("file")
    assert [b.name for b in files] == [
        "standup.py",
        "gridbot.toml",
        "test_standup.py",
        "tickets.py",
        "test_tickets.py",
        "test_whois.py",
    ]
    for block in files:
        project.write(block.name, block.text)
    assert sorted(p.name for p in project.path.iterdir()) == sorted(b.name for b in files)
    return project


def test_the_guide_as_written_checks_and_its_tests_pass_on_the_first_run(guide: Project) -> None:
    checked = guide.run("gridbot", "check-config", "gridbot.toml")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.endswith("plugins: help, whois, standup)\n") and checked.stderr == ""
    tested = guide.pytest()
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert tested.stdout.splitlines()[-1].startswith("==") and " 3 passed" in tested.stdout.splitlines()[-1]
    assert "warning" not in tested.stdout.lower()


@pytest.mark.parametrize(
    "output,broken",
    [
        ("misspelt", lambda source: source.replace('note: str = ""', 'nots: str = ""')),
        (
            "import-error",
            lambda source: source.replace("\nfrom gridbot", "\nimport standup_helpers\nfrom gridbot", 1),
        ),
    ],
)
def test_a_broken_plugin_fails_the_guides_test_with_its_own_error(
    guide: Project, output: str, broken: object
) -> None:
    source = (guide.path / "standup.py").read_text()
    guide.write("standup.py", broken(source))  # type: ignore[operator]
    line = one("output", output).text.strip()
    checked = guide.run("gridbot", "check-config", "gridbot.toml")
    assert checked.returncode == 2 and line in checked.stderr.splitlines()[1].strip(), checked.stderr
    tested = guide.pytest("test_standup.py")
    assert tested.returncode == 1
    assert line.removeprefix("plugins.enabled[2]: ") in tested.stdout
    assert "got 0" not in tested.stdout and "1 error" in tested.stdout.splitlines()[-1]
