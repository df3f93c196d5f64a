"""The dashboard in a real headless Chromium (Debian's chromium + chromium-driver, driven by selenium)
at 1280x800 against `forkline run` on Redis: live counts, a dead job replayed from the page, untrusted text
rendered as text, the API key asked for and kept for the session. The job lists, progress, promote and
cancel, the chart from the history and the page's width: tests/e2e/test_dashboard_jobs.py."""

import signal
import time

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from harness.processes import Forkline, wait_until
from tests.e2e.browser import KEY, chromium, click, post, text

XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


@pytest.fixture
def stack(tmp_path, redis_url):
    fl = Forkline("run", tmp_path, {"REDIS_URL": redis_url, "WEB_CONCURRENCY": "2", "JOB_MAX_RETRIES": "0",
                                    "API_KEYS": KEY, "WORKER_HEARTBEAT": "0.5"}).start(timeout=30)
    yield fl
    assert fl.stop(signal.SIGTERM, timeout=40) == 0


@pytest.fixture
def browser():
    yield from chromium()


def test_the_dashboard_live_with_a_replay_from_the_page_and_no_script_from_a_job(stack, browser, tmp_path):
    good = post(stack, {"message": "fine", "shouldFail": False})
    bad = post(stack, {"message": XSS, "shouldFail": True})  # its error repeats the message
    wait_until(lambda: stack.request("GET", "/queue/stats")[2]["dlq"] == 1, 20, 0.1, "the failing job dead")

    browser.get(f"http://127.0.0.1:{stack.port}/dashboard")
    wait = WebDriverWait(browser, 10, ignored_exceptions=(StaleElementReferenceException,))  # tables re-render
    wait.until(lambda d: d.find_element(By.ID, "key-panel").is_displayed())  # API_KEYS is set: it asks
    browser.find_element(By.ID, "key-input").send_keys(KEY)
    browser.find_element(By.ID, "key-form").submit()
    assert browser.execute_script("return sessionStorage.getItem('forkline.apiKey')") == KEY

    stats = stack.request("GET", "/queue/stats")[2]
    wait.until(lambda d: d.find_elements(By.ID, "count-completed"))
    for name in ("completed", "failed", "dlq", "waiting"):
        wait.until(lambda d, n=name: text(d, f"count-{n}").split("\n")[0] == str(stats[n]))
    wait.until(lambda d: text(d, "workers").count("\n") >= 1)  # the consumer, from its heartbeat

    wait.until(lambda d: XSS in d.find_element(By.CSS_SELECTOR, f'tr[data-job="{bad}"]').text)  # shown as text
    click(wait, f'tr[data-job="{bad}"] a')
    wait.until(lambda d: "Traceback" in text(d, "detail-body") and XSS in text(d, "detail-body"))
    assert browser.execute_script("return window.__pwned === undefined")
    assert not browser.find_elements(By.CSS_SELECTOR, "#dlq img, #detail img, #dlq script, #detail script")
    browser.save_screenshot(str(tmp_path / "dashboard.png"))
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000

    browser.find_element(By.ID, "job-id").send_keys(good)
    browser.find_element(By.ID, "job-form").submit()
    wait.until(lambda d: "completed" in text(d, "job-fields") and "fine" in text(d, "job-payload"))

    click(wait, f'tr[data-job="{bad}"] button.replay')
    browser.switch_to.alert.dismiss()  # asked first: nothing happens when refused
    time.sleep(0.3)
    assert stack.request("GET", "/queue/stats")[2]["dlq"] == 1
    click(wait, f'tr[data-job="{bad}"] button.replay')
    browser.switch_to.alert.accept()
    # Moved back to the queue: it runs, fails again (no retries here) and is back in the table, replayed once.
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, f'tr[data-job="{bad}"] td.replays').text == "1")
    record = stack.request("GET", f"/jobs/{bad}", headers={"X-API-Key": KEY})[2]
    assert record["replays"] == 1 and record["attempts"] == 1 and record["state"] == "dead"
    assert browser.execute_script("return window.__pwned === undefined")

    # Each named queue's row, paused and resumed from the page.
    queue_row = 'tr[data-queue="slow"]'
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, f"{queue_row} td.state").text == "running")
    click(wait, f"{queue_row} button.pause")
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, f"{queue_row} td.state").text == "paused")
    assert stack.request("GET", "/queue/stats")[2]["queues"]["slow"]["paused"] is True
    click(wait, f"{queue_row} button.resume")
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, f"{queue_row} td.state").text == "running")
    assert stack.request("GET", "/queue/stats")[2]["queues"]["slow"]["paused"] is False
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, f'tr[data-job="{bad}"]').text.split()[1] == "default")


def test_the_page_forbids_inline_scripts_and_other_origins(stack):
    status, headers, _ = stack.request("GET", "/dashboard")
    headers = {k.lower(): v for k, v in headers.items()}
    assert status == 200 and headers["content-type"].startswith("text/html")
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert stack.request("GET", "/dashboard/dashboard.js")[0] == 200
    assert stack.request("GET", "/dashboard/secrets.txt")[0] == 404
