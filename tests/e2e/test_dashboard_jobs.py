"""The dashboard's job lists in headless Chromium at 1280x800, on Redis (`forkline run`) and on the cloud
pairing (`forkline run --cloud`: SQS and DynamoDB emulated by moto): each state's tab lists what GET /jobs
lists, the chart has points as soon as the page opens (from GET /queue/history), a progress bar moves for a
job that reports progress, promote and cancel act from a row, a job's detail shows each error, and the
page is no wider than the window with long DLQ rows in it."""

import signal
import time

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from harness.processes import Forkline, wait_until
from tests.e2e.browser import KEY, WIDTH, chromium, click, post, text

AUTH = {"X-API-Key": KEY}
LONG = "an-error-with-no-place-to-break-" * 12  # 384 characters, no space


@pytest.fixture(params=["redis", "cloud"])
def stack(request, tmp_path, redis_url):
    env = {"WEB_CONCURRENCY": "2", "JOB_MAX_RETRIES": "0", "API_KEYS": KEY, "JOB_LEASE": "2",
           "GRACEFUL_TIMEOUT": "10"}
    if request.param == "redis":
        fl = Forkline("run", tmp_path, {**env, "REDIS_URL": redis_url})
    else:
        fl = Forkline("run", tmp_path, env, args=("--cloud",))
        fl.env.pop("REDIS_URL", None)
    fl.start(timeout=60)
    yield fl
    assert fl.stop(signal.SIGTERM, timeout=40) == 0, fl.output()[-3000:]


@pytest.fixture
def browser():
    yield from chromium()


def api(stack, method, path, body=None):
    status, _, data = stack.request(method, path, body, headers=AUTH)
    assert status < 300, (status, data)
    return data


def state(stack, job_id):
    return api(stack, "GET", f"/jobs/{job_id}")["state"]


def listed_ids(driver):
    return [row.get_attribute("data-job") for row in driver.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")]


def progress_of(driver, job_id):
    try:
        return float(driver.find_element(By.CSS_SELECTOR, f'#jobs tr[data-job="{job_id}"] progress')
                     .get_attribute("value"))
    except (NoSuchElementException, StaleElementReferenceException):
        return -1.0


def show_tab(wait, name):
    click(wait, f'#tabs button[data-state="{name}"]')
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#tabs button.current").get_attribute("data-state") == name)


def test_lists_progress_promote_cancel_chart_and_width(stack, browser, tmp_path):
    done = [post(stack, {"message": f"done {i}"}) for i in range(3)]
    dead = post(stack, {"message": LONG, "shouldFail": True})  # its error repeats the message
    wait_until(lambda: all(state(stack, j) == "completed" for j in done) and state(stack, dead) == "dead", 30, 0.2,
               "the first jobs finished")
    later, doomed = (post(stack, {"message": name, "delay": 600}) for name in ("promoted", "cancelled"))
    slow = post(stack, {"type": "sleep", "seconds": 8})
    wait_until(lambda: state(stack, slow) == "active", 20, 0.1, "the sleep job running")

    browser.get(f"http://127.0.0.1:{stack.port}/dashboard")
    wait = WebDriverWait(browser, 10, ignored_exceptions=(StaleElementReferenceException,))
    wait.until(lambda d: d.find_element(By.ID, "key-panel").is_displayed())
    browser.find_element(By.ID, "key-input").send_keys(KEY)
    browser.find_element(By.ID, "key-form").submit()

    # The chart is drawn from the history as soon as the page opens, and again right after a reload.
    completed = sum(b["completed"] for b in api(stack, "GET", "/queue/history")["buckets"])
    assert completed >= 3
    chart = (By.ID, "chart")
    wait.until(lambda d: int(d.find_element(*chart).get_attribute("data-completed") or 0) >= completed)
    browser.refresh()
    started = time.monotonic()
    wait.until(lambda d: int(d.find_element(*chart).get_attribute("data-completed") or 0) >= completed)
    assert time.monotonic() - started < 5
    assert int(browser.find_element(*chart).get_attribute("data-points")) >= 60  # a point per minute of the hour
    click(wait, '.range-button[data-hours="24"]')  # a day, per hour
    wait.until(lambda d: int(d.find_element(*chart).get_attribute("data-points")) in (24, 25))
    assert int(browser.find_element(*chart).get_attribute("data-completed")) >= completed

    # A progress bar that moves, on the active tab (the default).
    wait.until(lambda d: progress_of(d, slow) > 0)
    first = progress_of(browser, slow)
    wait.until(lambda d: progress_of(d, slow) > first + 0.1)
    assert listed_ids(browser) == [j["id"] for j in api(stack, "GET", "/jobs?state=active")["items"]]
    browser.save_screenshot(str(tmp_path / "dashboard.png"))  # docs/dashboard.png is refreshed from it by hand
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000

    # Filtered by queue: the active tab of the default queue holds nothing (the sleep job is the slow queue's).
    Select(browser.find_element(By.ID, "jobs-queue")).select_by_value("default")
    browser.find_element(By.ID, "jobs-form").submit()
    wait.until(lambda d: listed_ids(d) == [] and d.find_element(By.ID, "jobs-empty").is_displayed())
    Select(browser.find_element(By.ID, "jobs-queue")).select_by_value("")
    browser.find_element(By.ID, "jobs-form").submit()
    wait.until(lambda d: listed_ids(d) == [slow])

    # Each tab lists what GET /jobs lists, newest first.
    for name in ("completed", "dead", "scheduled"):
        show_tab(wait, name)
        expected = [j["id"] for j in api(stack, "GET", f"/jobs?state={name}")["items"]]
        wait.until(lambda d, e=expected: listed_ids(d) == e)
    # Both, in the API's order: posted a millisecond or two apart, through two web workers whose readings of
    # Redis's clock differ by about that much, they may list in either order (docs/api.md).
    assert sorted(listed_ids(browser)) == sorted([doomed, later])

    # Start now and cancel, from their rows.
    click(wait, f'#jobs tr[data-job="{later}"] button.promote')
    wait_until(lambda: state(stack, later) == "completed", 20, 0.1, "the promoted job run")
    click(wait, f'#jobs tr[data-job="{doomed}"] button.cancel')
    browser.switch_to.alert.accept()
    wait_until(lambda: state(stack, doomed) == "cancelled", 10, 0.1, "the job cancelled")
    wait.until(lambda d: listed_ids(d) == [])
    assert api(stack, "GET", f"/jobs/{later}")["promotions"] == 1

    # A dead job with a long error: cut in the row, whole in the detail; the page no wider than the window.
    show_tab(wait, "dead")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'#dlq tr[data-job="{dead}"]'))
    click(wait, f'#jobs tr[data-job="{dead}"] a')
    wait.until(lambda d: LONG in text(d, "job-errors") and "attempt 1" in text(d, "job-errors"))
    assert LONG in text(browser, "job-payload")
    widths = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[1] == WIDTH and widths[0] <= widths[1], widths
    browser.save_screenshot(str(tmp_path / "dashboard-dead.png"))
