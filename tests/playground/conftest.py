"""The browser test needs Debian's chromium and chromium-driver and the selenium package.

Where they are missing it is skipped with a loud warning, except in CI (CI=true) or under
GRIDBOT_REQUIRE_BROWSER=1 (set by .ci/run), where it fails instead, like the Redis tests.
"""

from __future__ import annotations

import pytest
from playground.playkit import browser_missing, browser_required


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    why = browser_missing()
    if why and not browser_required():
        terminalreporter.write_line(
            f"WARNING: the playground's browser test was SKIPPED: {why}", red=True, bold=True
        )
