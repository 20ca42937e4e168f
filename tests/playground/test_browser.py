"""The playground in a real browser: Debian's headless Chromium, driven through chromedriver.

``gridbot playground`` runs as a process on free ports, as a person would start it. The test types
a message, sees the reply and the decision about each team's copy, cuts the elected team's socket
and sees the standby rescue and the takeover, then saves the screenshot. The README's
docs/playground.png is that screenshot: ``GRIDBOT_UPDATE_SCREENSHOT=1`` writes it there (otherwise
it goes to the test's temporary folder, so a test run leaves the tree clean).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playground.playkit import ALICE, BOB, CHROMEDRIVER, CHROMIUM, SHARED, T1, T2, require_browser

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "playground.png"
WINDOW = (1280, 720)
MAX_SCREENSHOT = 250_000  # bytes: the README's picture stays small


@contextmanager
def playground_process(tmp_path: Path) -> Iterator[str]:
    """``gridbot playground --port 0``; yields the page's URL; Ctrl-C (SIGINT) at the end."""
    out = tmp_path / "playground.out"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gridbot.cli", "--log-level", "warning", "playground", "--port", "0"],
            stdout=sink, stderr=subprocess.STDOUT, cwd=tmp_path,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not (found := re.search(r"gridbot playground: (http://\S+)", out.read_text())):
            assert proc.poll() is None, f"the playground exited: {out.read_text()}"
            assert time.monotonic() < deadline, f"no URL printed: {out.read_text()}"
            time.sleep(0.05)
        yield found.group(1)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, out.read_text()
    assert "gridbot playground: stopped" in out.read_text()


@contextmanager
def chromium() -> Iterator[Any]:
    """Headless Chromium with an explicit driver path: Selenium Manager never downloads anything."""
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={WINDOW[0]},{WINDOW[1]}", "--hide-scrollbars"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: Any, what: str, pred: Callable[[Any], Any], timeout: float = 20) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, ignored_exceptions=[StaleElementReferenceException]).until(
        pred, f"waiting for {what}"
    )


def card(driver: Any, text: str) -> Any:
    """The message card whose text is ``text``, or None."""
    from selenium.webdriver.common.by import By

    for article in driver.find_elements(By.CSS_SELECTOR, "article.message"):
        if article.find_element(By.CSS_SELECTOR, ".msg-text").text == text:
            return article
    return None


def cells(article: Any) -> dict[str, str]:
    """Each team's row of a card: {team id: decision text}."""
    from selenium.webdriver.common.by import By

    rows = article.find_elements(By.CSS_SELECTOR, "tr.copy")
    return {r.get_attribute("data-team"): r.find_element(By.CSS_SELECTOR, ".decision").text for r in rows}


def type_as(driver: Any, user: str, text: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, "conversation")).select_by_value(SHARED)
    Select(driver.find_element(By.ID, "user")).select_by_value(user)
    driver.find_element(By.ID, "text").send_keys(text, Keys.ENTER)


def test_the_page_shows_a_message_its_decisions_the_reply_and_a_takeover(tmp_path: Path) -> None:
    require_browser()
    from selenium.webdriver.common.by import By

    team = lambda t, part: f'.team[data-team="{t}"] {part}'  # noqa: E731
    with playground_process(tmp_path) as url, chromium() as driver:
        driver.get(url)
        wait(driver, "the stream", lambda d: d.find_element(By.ID, "link").text == "live")
        for t in (T1, T2):
            wait(driver, f"{t} connected", lambda d, t=t: d.find_element(By.CSS_SELECTOR, team(t, ".state")).text == "connected")
        orgs = driver.find_element(By.ID, "conversations").text
        assert "#shared-all" in orgs and "bots: Team One, Team Two" in orgs

        type_as(driver, ALICE, "echo hello grid")
        first = wait(driver, "the reply", lambda d: (c := card(d, "echo hello grid")) and c.find_elements(By.CSS_SELECTOR, ".reply") and c)
        assert first.find_element(By.CSS_SELECTOR, ".reply").text == "↳ Team One: hello grid"
        wait(driver, "both decisions", lambda d: cells(card(d, "echo hello grid")) == {T1: "handled", T2: "duplicate"})
        assert card(driver, "echo hello grid").find_element(By.CSS_SELECTOR, ".elected").text == "Team One"

        driver.find_element(By.CSS_SELECTOR, f'button[data-fault="cut"][data-team="{T1}"]').click()
        wait(driver, "Team One's heartbeat to lapse", lambda d: d.find_element(By.CSS_SELECTOR, team(T1, ".heartbeat")).text == "heartbeat lapsed")
        type_as(driver, BOB, "echo after the cut")
        after = wait(driver, "the takeover", lambda d: (c := card(d, "echo after the cut")) and c.find_elements(By.CSS_SELECTOR, ".takeover") and c.find_elements(By.CSS_SELECTOR, ".reply") and c)
        assert after.find_element(By.CSS_SELECTOR, ".takeover").text == "takeover: Team One → Team Two"
        assert after.find_element(By.CSS_SELECTOR, ".reply").text == "↳ Team Two: after the cut"
        assert cells(after)[T2] == "standby → rescued"
        wait(driver, "Team One shown without a copy", lambda d: cells(card(d, "echo after the cut"))[T1] == "no copy: no socket")
        timeline = driver.find_element(By.ID, "timeline").text
        assert "#shared-all: takeover, Team One → Team Two (epoch 2)" in timeline
        wait(driver, "the new election", lambda d: "Team Two (epoch 2)" in d.find_element(By.CSS_SELECTOR, f'#conversations tr[data-channel="{SHARED}"] .elected').text)

        shot = tmp_path / "playground.png"
        assert driver.save_screenshot(str(shot))
        data = shot.read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) < MAX_SCREENSHOT, len(data)
        if os.environ.get("GRIDBOT_UPDATE_SCREENSHOT") == "1":
            SCREENSHOT.write_bytes(data)
