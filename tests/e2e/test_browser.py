"""The MLflow UI as a control, in a real headless Chromium (Debian's chromium + chromium-driver,
driven by Selenium; `.ci/run` installs them): setting alias ``challenger`` on a version page starts
a rollout that finishes on its own, and the UI's "Promote model" button, which copies a version into
a watched production model, starts a rollout there. Real MLflow server, control plane and serving."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.integration.test_rollout import RolloutStack, stack  # noqa: F401 - the module's stack fixture

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)",
    ),
]
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
    # nothing but loopback: Chromium otherwise keeps trying to resolve its vendors' hosts
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    profile = tempfile.mkdtemp(prefix="chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _open_version(browser: WebDriver, url: str, model: str, version: str) -> WebDriverWait[WebDriver]:
    browser.get(f"{url}/#/models/{model}/versions/{version}")
    return WebDriverWait(browser, 30)


def _set_alias_in_the_ui(browser: WebDriver, url: str, model: str, version: str, alias: str) -> None:
    wait = _open_version(browser, url, model, version)
    wait.until(
        ec.element_to_be_clickable(
            (By.CSS_SELECTOR, 'button[title="Add aliases"], button[title="Edit aliases"]')
        )
    ).click()
    # the modal fades in: wait for its text, not just for it to exist
    wait.until(
        ec.text_to_be_present_in_element(
            (By.CSS_SELECTOR, '[role="dialog"]'), f"alias for model version {version}"
        )
    )
    box = browser.find_element(By.CSS_SELECTOR, '[role="dialog"] input[role="combobox"]')
    box.send_keys(alias, Keys.ENTER)
    browser.find_element(
        By.CSS_SELECTOR, 'button[data-component-id="mlflow.edit-aliases-modal.save-button"]'
    ).click()
    wait.until(ec.invisibility_of_element_located((By.CSS_SELECTOR, '[role="dialog"]')))
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, f'[title="{alias}"]')))


def _promote_in_the_ui(browser: WebDriver, url: str, model: str, version: str, target: str) -> None:
    wait = _open_version(browser, url, model, version)
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), f"Version {version}"))
    wait.until(ec.element_to_be_clickable((By.XPATH, "//button[contains(., 'Promote model')]"))).click()
    wait.until(
        ec.text_to_be_present_in_element(
            (By.CSS_SELECTOR, '[role="dialog"]'), f"Promote {model} version {version}"
        )
    )
    # the dialog re-renders while it loads the model list: act on fresh references
    _fresh(wait, (By.CSS_SELECTOR, '[role="dialog"] input#selectedModel'), lambda e: e.click())
    _fresh(wait, (By.CSS_SELECTOR, '[role="dialog"] input#selectedModel'), lambda e: e.send_keys(target))
    _fresh(
        wait,
        (By.XPATH, f"//div[contains(@class, 'select-item-option') and @title='{target}']"),
        lambda e: e.click(),
    )
    _fresh(
        wait, (By.XPATH, "//div[@role='dialog']//button[normalize-space(.)='Promote']"), lambda e: e.click()
    )
    wait.until(lambda d: f"/models/{target}/versions/" in d.current_url)


def _fresh(
    wait: WebDriverWait[WebDriver], locator: tuple[str, str], action: Callable[[WebElement], None]
) -> None:
    for attempt in range(5):
        try:
            action(wait.until(ec.element_to_be_clickable(locator)))
            return
        except StaleElementReferenceException:
            if attempt == 4:
                raise
            time.sleep(0.2)


def test_alias_set_in_the_mlflow_ui_starts_a_rollout_that_finishes(
    browser: WebDriver,
    stack: RolloutStack,  # noqa: F811
) -> None:
    int8 = stack.versions["int8"]
    started = time.monotonic()
    _set_alias_in_the_ui(browser, stack.registry.tracking_uri, stack.name, int8, "challenger")
    clicked = time.monotonic() - started
    first = stack.wait(
        lambda s: s["rollout"]["challenger"] == int8,
        15,
        "rollout start after the UI click",  # type: ignore[index]
    )
    assert first["rollout"]["phase"] in ("shadow", "canary")  # type: ignore[index]
    done = stack.wait(
        lambda s: s["rollout"]["phase"] not in ("shadow", "canary"),
        120,
        "rollout end",  # type: ignore[index]
    )
    assert done["rollout"]["phase"] == "promoted", done  # type: ignore[index]
    assert stack.registry.aliases(stack.name) == {"champion": int8}
    assert set(stack.load.statuses) == {200}, stack.load.statuses
    print(
        f"UI alias set in {clicked:.1f} s; promoted {time.monotonic() - started:.1f} s after the click began"
    )


def test_promote_model_button_starts_a_rollout_in_the_watched_production_model(
    browser: WebDriver,
    stack: RolloutStack,  # noqa: F811
) -> None:
    target = f"{stack.name}-prod"  # the control plane of this stack watches it
    MlflowClient(stack.registry.tracking_uri).create_registered_model(target)
    url = stack.registry.tracking_uri
    _promote_in_the_ui(browser, url, stack.name, stack.versions["fp32"], target)
    deadline = time.monotonic() + 20
    while stack.registry.aliases(target).get("champion") != "1" and time.monotonic() < deadline:
        time.sleep(0.25)
    assert stack.registry.aliases(target) == {"champion": "1"}, "the first promoted version becomes champion"
    _promote_in_the_ui(browser, url, stack.name, stack.versions["int8"], target)
    control = stack.control.url
    deadline = time.monotonic() + 20
    status: dict[str, object] = {}
    while time.monotonic() < deadline:
        r = httpx.get(f"{control}/rollouts/{target}", timeout=10)
        status = r.json() if r.status_code == 200 else {}
        if status:
            break
        time.sleep(0.25)
    rollout = status.get("rollout")
    assert isinstance(rollout, dict), status
    assert rollout["champion"] == "1" and rollout["challenger"] == "2", rollout
    assert rollout["phase"] in ("shadow", "canary"), rollout
    assert stack.registry.aliases(target) == {"champion": "1", "challenger": "2"}
