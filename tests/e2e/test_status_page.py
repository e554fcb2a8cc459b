"""The status page and the rule workbench in a real headless browser.

Debian's chromium and chromedriver, driven by selenium; `.ci/run` installs
them. Set STATUS_PAGE_SCREENSHOTS to a folder (e.g. ``docs``) to keep the
screenshots as ``status-page.png`` and ``status-page-phone.png``.
"""

from __future__ import annotations

import os
import re
import shutil
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    REPO,
    Proc,
    WebhookServer,
    base_env,
    events_env,
    send_from,
    udp_port_of,
    wait_for,
)

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SECRET = "s3cr3t-token-for-the-test"

LOGIN = b"system,error,critical login failure for user admin from 10.0.0.9 via ssh"
INFO = b"system,info,account user admin logged in from 10.0.0.9 via winbox"
LINK = b"<30>Oct  2 17:36:35 core interface,info ether1 link down"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip(
            "needs Debian's chromium and chromium-driver (apt-get install "
            "chromium chromium-driver; .ci/run installs them)"
        )
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--window-size=1100,1000",
    ):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def page_url(proc: Proc) -> str:
    line = proc.wait_line("web listening on ")
    match = re.search(r"(http://\S+)/,", line)
    assert match, line
    return match.group(1)


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return str(answer.read().decode())


def keep(driver: Any, name: str) -> None:
    folder = os.environ.get("STATUS_PAGE_SCREENSHOTS")
    if folder:
        target = Path(folder)
        if not target.is_absolute():
            target = REPO / target
        driver.save_screenshot(str(target / name))


def test_the_status_page_shows_the_runs_numbers_and_the_workbench_its_captures(
    tmp_path: Path,
    spawn: Callable[..., Proc],
    webhook: WebhookServer,
    browser: Any,
) -> None:
    """1. `alertik run` with the page on an ephemeral port, two rules to a
    local webhook whose URL holds a token;
    2. router 127.0.0.1 sends 6 lines (2 raise alerts), 127.0.0.2 sends 3
    (1 raises an alert); the webhook gets the 3 alerts;
    3. chromium loads the page, then on a phone-sized screen, then pastes a
    line into the workbench.
    Result: each router's row and chart show its messages and alerts, the
    destination its deliveries, the last alerts their outcome; the page fits
    a phone's width; the workbench shows the rule that matched, its captures,
    the text and the webhook's body, and the other rule as no match; the
    token appears nowhere."""
    from selenium.webdriver.common.by import By

    env = base_env(
        tmp_path,
        ALERTIK_WEB_ADDR="127.0.0.1:0",
        ALERTIK_TIME_SUFFIX="",
        ALERTIK_NODE_NAME="office",
        GENERIC1_WEBHOOK_URL=f"{webhook.url}/hook?token={SECRET}",
        **events_env(
            (
                "Generic1",
                "regex",
                r"login failure for user ([a-z]+) from ([0-9.]+)",
                "Failed login as @1 from @2",
            ),
            ("Generic1", "substr", "link down", "Link down on @{sender}"),
        ),
    )
    run = spawn("run", env=env)
    port = udp_port_of(run)
    url = page_url(run)
    run.wait_line("success: web entered RUNNING state")
    # The page's last hour starts when it first hears from the stages.
    wait_for(
        lambda: fetch(url + "/").count('<span class="state up">running') == 4,
        15,
        "the page to hear from every stage",
    )
    send_from("127.0.0.1", port, LOGIN, INFO, INFO, LOGIN, INFO, INFO)
    send_from("127.0.0.2", port, INFO, LINK, INFO)
    webhook.wait(3)
    expected = (
        "messages from 127.0.0.1: 6 in",
        "alerts from 127.0.0.1: 2 in",
        "messages from 127.0.0.2: 3 in",
        "alerts from 127.0.0.2: 1 in",
        'data-label="delivered">3</td>',
    )

    def shown() -> bool:
        page = fetch(url + "/")
        return all(e in page for e in expected) and (
            page.count('class="state delivered"') == 3
        )

    # The figures come with heartbeats, at most a second or two behind.
    try:
        wait_for(shown, 15, "the run's numbers on the page")
    except BaseException:
        print(fetch(url + "/"))
        print(fetch(url + "/metrics"))
        raise

    browser.get(url + "/")
    assert browser.title == "alertik · office"

    def row(router: str) -> Any:
        return browser.find_element(By.CSS_SELECTOR, f'tr[data-router="{router}"]')

    first, second = row("127.0.0.1"), row("127.0.0.2")
    assert first.find_element(By.CLASS_NAME, "messages").text == "6"
    assert first.find_element(By.CLASS_NAME, "alerts").text == "2"
    assert second.find_element(By.CLASS_NAME, "messages").text == "3"
    assert second.find_element(By.CLASS_NAME, "alerts").text == "1"
    charts = first.find_elements(By.CSS_SELECTOR, "svg.chart")
    assert [c.get_attribute("aria-label") for c in charts] == [
        "messages from 127.0.0.1: 6 in the last hour, at most 6 a minute",
        "alerts from 127.0.0.1: 2 in the last hour, at most 2 a minute",
    ]
    bars = charts[0].find_elements(By.TAG_NAME, "rect")
    assert len(bars) in (1, 2)  # the run may straddle a minute
    assert bars[-1].size["height"] > 0
    dest = browser.find_element(By.CSS_SELECTOR, 'tr[data-destination="Generic1"]')
    assert dest.find_element(By.CLASS_NAME, "delivered").text == "3"
    assert dest.find_element(By.CLASS_NAME, "pending").text == "0"
    alerts = browser.find_elements(By.CSS_SELECTOR, "#alerts tbody tr")
    texts = sorted(a.find_elements(By.TAG_NAME, "td")[-1].text for a in alerts)
    assert texts == [
        "Failed login as admin from 10.0.0.9",
        "Failed login as admin from 10.0.0.9",
        "Link down on 127.0.0.2",
    ]
    assert all("delivered" in a.text for a in alerts)
    assert SECRET not in browser.page_source
    keep(browser, "status-page.png")

    browser.set_window_size(390, 844)  # a phone
    browser.get(url + "/")
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"
    )
    keep(browser, "status-page-phone.png")
    browser.set_window_size(1100, 1000)

    browser.find_element(By.LINK_TEXT, "rule workbench").click()
    lines = browser.find_element(By.ID, "lines")
    lines.send_keys(LOGIN.decode() + "\n" + INFO.decode())
    sender = browser.find_element(By.ID, "sender")
    sender.clear()
    sender.send_keys("192.0.2.7")
    browser.find_element(By.ID, "try").click()
    wait_for(lambda: browser.find_elements(By.ID, "results"), 20, "the results")
    first_line = browser.find_element(By.CSS_SELECTOR, 'section[data-line="1"]')
    hit = first_line.find_element(By.CSS_SELECTOR, 'tr[data-rule="EVENT0"]')
    assert hit.find_element(By.CLASS_NAME, "captures").text.split("\n") == [
        "@1 = admin",
        "@2 = 10.0.0.9",
    ]
    assert hit.find_element(By.CLASS_NAME, "text").text == (
        "Failed login as admin from 10.0.0.9"
    )
    assert hit.find_element(By.CLASS_NAME, "messages").text == (
        'Generic1: {"text":"Failed login as admin from 10.0.0.9"}'
    )
    other = first_line.find_element(By.CSS_SELECTOR, 'tr[data-rule="EVENT1"]')
    assert "no match" in other.text
    second_line = browser.find_element(By.CSS_SELECTOR, 'section[data-line="2"]')
    assert "no match" in second_line.find_element(By.TAG_NAME, "h2").text
    assert SECRET not in browser.page_source
    assert SECRET not in run.output
    assert run.terminate() == 0
