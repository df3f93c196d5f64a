"""Headless Chromium for the dashboard's tests (Debian's chromium + chromium-driver, driven by selenium),
at the laptop size the page must fit: 1280x800."""

import os
from collections.abc import Iterator

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from harness.processes import Forkline

KEY = "dash-key-1"
WIDTH, HEIGHT = 1280, 800


def chromium() -> Iterator[webdriver.Chrome]:
    assert os.path.exists("/usr/bin/chromedriver"), "chromium-driver is missing: `make test` installs it"
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={WIDTH},{HEIGHT}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()  # chromedriver and its browser, stopped by the service that started them


def post(stack: Forkline, body: dict) -> str:
    status, _, data = stack.request("POST", "/jobs", body, headers={"X-API-Key": KEY})
    assert status == 202, data
    return data["jobId"]


def text(driver: webdriver.Chrome, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def click(wait: WebDriverWait, selector: str) -> None:
    """Find and click in one retried step: the live tables re-render every refresh, so an element
    found a moment ago may be gone (stale) by the time it is clicked."""
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, selector).click() or True)
