"""``make ui-test``: the connection form, its *Test* button and the Providers page in a real browser.

Starts a throwaway Airflow (``airflow db migrate``, then ``airflow api-server``, SQLite, simple auth
manager with every user an admin, connection testing enabled) and a Confirma sandbox on loopback,
then drives headless Chromium (Debian's ``chromium`` and ``chromium-driver``) with Selenium as a
data engineer would:

1. Add a Confirma connection through the form (Base URL of the sandbox, the right API key, port 0),
   save it, press *Test*: success, with our message.
2. Reopen it with *Edit*: the fields were kept; put a wrong key in, save, *Test*: our 401 message,
   never the key.
3. A connection saved without a port (through the REST API) and tested from the UI: on Airflow
   3.3.2 its API refuses it (``400``), the limit docs/connection.md describes; reported, not failed.
4. A timeout of 0 typed into the form: what Airflow saves, and the test's message.
5. The provisioning token typed into the form: whether the *Extra Fields JSON* editor shows it.
6. The Providers page: the package links to our documentation, the description to Confirma's API.

The API key never appears in a page the browser rendered after saving, nor in any test message.
Screenshots go to ``ui-results/``; ``--update-docs`` copies the form's to docs/connection-form.png.
Every process is started in its own session and stopped by its process group id in ``finally``.
Runs in the ``.venv-ui`` environment (Selenium only); Airflow and the sandbox run from ``--venv``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "ui-results"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: As this machine's Chromium needs it: no sandbox as root, and no background connections (the
#: network is closed; Chromium would retry them at every start).
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1100",
]
SANDBOX_PORT = 8765  # the sandbox's default, as the form's placeholder says
RIGHT_KEY = "ck_ui_right_" + os.urandom(8).hex()
WRONG_KEY = "ck_ui_wrong_" + os.urandom(8).hex()
TOKEN = "pt_ui_token_" + os.urandom(8).hex()
DOCS_URL = "https://github.com/confirma-oss/airflow-provider-confirma/tree/main/docs"
API_DOCS_URL = "https://developer-partnerapi.confirmafinance.com/"
#: Records each ``POST /api/v2/connections/test`` of the page (request body, status, response).
RECORD_TESTS = """
(() => {
  window.__tests = [];
  const open = XMLHttpRequest.prototype.open, send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (method, url) {
    this.__url = String(url);
    return open.apply(this, arguments);
  };
  XMLHttpRequest.prototype.send = function (body) {
    if (this.__url.includes('/connections/test')) {
      this.addEventListener('loadend', () =>
        window.__tests.push({status: this.status, body: this.responseText, request: body}));
    }
    return send.apply(this, arguments);
  };
  const original = window.fetch;
  window.fetch = async function (input, init) {
    const response = await original.apply(this, arguments);
    const url = String((input && input.url) || input);
    if (url.includes('/connections/test')) {
      window.__tests.push({status: response.status, body: await response.clone().text(), request: init && init.body});
    }
    return response;
  };
})();
"""


class Failed(AssertionError):
    """A check of the UI test failed."""


def check(condition: Any, message: str) -> None:
    if not condition:
        raise Failed(message)


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, predicate: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if result := predicate():
                return result
        time.sleep(interval)
    raise Failed(f"timed out after {timeout:.0f} s waiting for {what}")


class Processes:
    """Child processes, each in its own session, stopped by process group id."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        self.started[name] = subprocess.Popen(  # noqa: S603 - our own commands
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def stop_all(self) -> None:
        for process in self.started.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.started.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


def api(base: str, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(  # noqa: S310 - loopback http
        f"{base}/api/v2{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read() or b"null")


@contextlib.contextmanager
def browser(profile: Path) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(15)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_TESTS})
    try:
        yield driver
    finally:
        driver.quit()


class Page:
    """The few things the test does in Airflow's UI, by visible labels and field names."""

    def __init__(self, driver: WebDriver, base: str) -> None:
        self.driver = driver
        self.base = base

    def open(self, path: str) -> None:
        self.driver.get(f"{self.base}{path}")

    def button(self, label: str) -> WebElement:
        return self.driver.find_element(By.XPATH, f"//button[@aria-label='{label}' or normalize-space(.)='{label}']")

    def field(self, name: str) -> WebElement:
        return self.driver.find_element(By.NAME, name)

    def type_into(self, name: str, text: str) -> None:
        element = self.field(name)
        element.send_keys(Keys.CONTROL, "a")
        element.send_keys(Keys.DELETE)
        element.send_keys(text)

    def expand(self, section: str) -> None:
        self.driver.find_element(By.XPATH, f"//button[normalize-space(.)='{section}']").click()
        time.sleep(0.5)

    def text(self) -> str:
        return str(self.driver.find_element(By.TAG_NAME, "body").text)

    def shot(self, name: str) -> Path:
        path = RESULTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def add_connection(self, conn_id: str) -> None:
        self.open("/connections")
        self.button("Add Connection").click()
        self.field("connection_id").send_keys(conn_id)
        kind = self.driver.find_element(By.CSS_SELECTOR, "input[role=combobox]")
        kind.send_keys("Confirma Finance")
        time.sleep(0.5)
        kind.send_keys(Keys.ENTER)
        wait_for("the Confirma form", lambda: "Base URL (optional)" in self.text(), 15)

    def save(self) -> None:
        self.button("Save").click()
        wait_for("the connection list", lambda: "Add Connection" in self.text() and not self._dialog_open(), 20)

    def _dialog_open(self) -> bool:
        return bool(self.driver.find_elements(By.CSS_SELECTOR, "[role=dialog]"))

    def row_button(self, conn_id: str, label: str) -> WebElement:
        row = f"//tr[.//td[normalize-space(.)='{conn_id}']]"
        return self.driver.find_element(By.XPATH, f"{row}//button[@aria-label='{label}']")

    def test(self, conn_id: str) -> dict[str, Any]:
        """Press *Test* on the row of ``conn_id``; the API's answer as the page received it."""
        self.open("/connections")
        self.driver.execute_script("window.__tests = []")
        self.row_button(conn_id, "Test Connection").click()
        (result,) = wait_for("the test's answer", lambda: self.driver.execute_script("return window.__tests"), 30)
        body = json.loads(result["body"] or "null")
        return {"status_code": result["status"], "body": body, "request": json.loads(result["request"] or "{}")}


def run(args: argparse.Namespace) -> list[str]:
    """The whole UI test; returns the observations to print (a failed check raises)."""
    notes: list[str] = []
    home = Path(tempfile.mkdtemp(prefix="confirma-ui-"))
    bin_dir = Path(args.venv).resolve() / "bin"
    api_port = free_port()
    sandbox_port = SANDBOX_PORT if port_is_free(SANDBOX_PORT) else free_port()  # the docs' screenshot shows it
    base = f"http://127.0.0.1:{api_port}"
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
    }
    (home / "dags").mkdir()
    (home / "key").write_text(RIGHT_KEY)
    RESULTS.mkdir(exist_ok=True)
    processes = Processes(home)
    try:
        print("ui-test: airflow db migrate", flush=True)
        migrate = [str(bin_dir / "airflow"), "db", "migrate"]
        subprocess.run(migrate, env=env, check=True, capture_output=True, timeout=300)  # noqa: S603
        processes.start("api-server", [str(bin_dir / "airflow"), "api-server", "--port", str(api_port)], env)
        processes.start(
            "sandbox",
            [str(bin_dir / "confirma-sandbox"), "--port", str(sandbox_port), "--api-key-file", str(home / "key")],
            env,
        )
        wait_for("the sandbox", lambda: not port_is_free(sandbox_port), 60)
        wait_for("the api-server", lambda: api(base, "GET", "/version"), 180)
        notes.append(f"Airflow {api(base, 'GET', '/version')['version']}")
        with browser(home / "profile") as driver:
            page = Page(driver, base)
            notes += form_and_test(page, base, sandbox_url)
            notes += empty_port(page, base, sandbox_url)
            notes += zero_timeout(page, base, sandbox_url)
            notes += providers_page(page)
    finally:
        processes.stop_all()
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    if args.update_docs:
        shutil.copy(RESULTS / "connection-form.png", REPO / "docs" / "connection-form.png")
        notes.append("docs/connection-form.png updated")
    return notes


def form_and_test(page: Page, base: str, sandbox_url: str) -> list[str]:
    """Items 1 and 2: add through the form, Test, reopen, wrong key, Test."""
    page.add_connection("confirma_ui")
    text = page.text()
    for label in ("Base URL (optional)", "API key", "Port"):
        check(label in text, f"the form shows no {label!r} field")
    check("Login" not in text and "Schema" not in text, "the form shows Airflow's unused Login or Schema field")
    check(page.field("password").get_attribute("type") == "password", "the API key field is not a password field")
    placeholder = page.field("password").get_attribute("placeholder") or ""
    check("required" in placeholder, f"the API key is not marked required: {placeholder!r}")
    page.type_into("host", sandbox_url)
    page.type_into("password", RIGHT_KEY)
    page.type_into("port", "0")
    page.shot("connection-form")
    page.expand("Extra Fields")
    check("Environment" in page.text() and "Request timeout (seconds)" in page.text(), "the extra fields are missing")
    check(page.field("element_timeout").get_attribute("value") == "30", "the timeout field has no default of 30")
    page.shot("connection-form-extra")
    page.save()
    stored = api(base, "GET", "/connections/confirma_ui")
    saved = (stored["host"], stored["port"])
    check(saved == (sandbox_url, 0), f"the form saved host and port {saved}")
    check(RIGHT_KEY not in json.dumps(stored), "the REST API returned the API key")
    check(RIGHT_KEY not in page.driver.page_source, "the connection list holds the API key")

    result = page.test("confirma_ui")
    page.shot("test-right-key")
    body = result["body"]
    check(result["status_code"] == 200 and body["status"] is True, f"Test with the right key failed: {result}")
    check(body["message"].startswith("API key is valid"), f"unexpected success message {body['message']!r}")
    check("Test Connection Successful" in page.text() or body["message"] in page.text(), "the page shows no success")
    notes = [f"Test, right key: {body['message']!r}"]

    page.row_button("confirma_ui", "Edit Connection").click()
    wait_for("the edit form", lambda: page.field("host").get_attribute("value") == sandbox_url, 15)
    check(page.field("port").get_attribute("value") == "0", "the reopened form lost the port")
    check(RIGHT_KEY not in page.driver.page_source, "the reopened form shows the API key")
    page.type_into("password", WRONG_KEY)
    page.save()
    result = page.test("confirma_ui")
    page.shot("test-wrong-key")
    body = result["body"]
    check(result["status_code"] == 200 and body["status"] is False, f"Test with a wrong key passed: {result}")
    check("401" in body["message"], f"the wrong key's message does not say 401: {body['message']!r}")
    check(WRONG_KEY not in body["message"] and WRONG_KEY not in page.driver.page_source, "the wrong key is shown")
    check("confirma_ui" not in body["message"] or "This Confirma connection" in body["message"], body["message"])
    notes.append(f"Test, wrong key: {body['message']!r}")
    return notes


def empty_port(page: Page, base: str, sandbox_url: str) -> list[str]:
    """Item 1's Airflow limit: a connection stored without a port (REST API, CLI, old forms)."""
    api(
        base,
        "POST",
        "/connections",
        {"connection_id": "confirma_noport", "conn_type": "confirma", "host": sandbox_url, "password": RIGHT_KEY},
    )
    result = page.test("confirma_noport")
    sent = result["request"].get("port")
    if result["status_code"] == 400:
        return [
            f"Test without a stored port: HTTP 400, the UI sent port {sent!r} (Airflow's limit: docs/connection.md)"
        ]
    body = result["body"]
    check(body["status"] is True, f"Test without a stored port: {result}")
    return [f"Test without a stored port: passes on this Airflow ({body['message']!r})"]


def zero_timeout(page: Page, base: str, sandbox_url: str) -> list[str]:
    """Item 3: a timeout of 0 in the form, and the token in the Extra Fields JSON editor."""
    page.add_connection("confirma_t0")
    page.type_into("host", sandbox_url)
    page.type_into("password", RIGHT_KEY)
    page.type_into("port", "0")
    page.expand("Extra Fields")
    page.type_into("element_timeout", "0")
    page.type_into("element_partner_provisioning_token", TOKEN)
    page.expand("Extra Fields JSON")
    token_shown = TOKEN in page.driver.page_source
    page.shot("extra-json")
    page.save()
    notes = [f"Provisioning token shown in the Extra Fields JSON editor while typing: {token_shown}"]
    try:
        stored = api(base, "GET", "/connections/confirma_t0")
    except urllib.error.HTTPError as err:
        return [*notes, f"timeout 0: the form refused to save (HTTP {err.code})"]
    check(TOKEN not in json.dumps(stored), "the REST API returned the provisioning token")
    saved = json.loads(stored["extra"] or "{}").get("timeout")
    result = page.test("confirma_t0")
    message = result["body"]["message"]
    if saved == 0:  # the form let it through: the hook must refuse it, naming the field
        check(result["body"]["status"] is False and "timeout" in message, f"timeout 0 tested as {result}")
    else:
        check(saved == 1, f"a timeout typed as 0 was saved as {saved!r}")
    return [*notes, f"timeout typed as 0, saved as {saved!r}; Test: {message!r}"]


def providers_page(page: Page) -> list[str]:
    """Item 4: the package's link and the API docs link on the Providers page."""
    page.open("/providers")
    row = page.driver.find_element(By.XPATH, "//tr[.//a[normalize-space(.)='airflow-provider-confirma']]")
    links = {a.text: a.get_attribute("href") for a in row.find_elements(By.TAG_NAME, "a")}
    page.shot("providers")
    check(links.get("airflow-provider-confirma") == DOCS_URL, f"the package links to {links}")
    check(API_DOCS_URL in links.values(), f"no link to Confirma's API docs on the Providers page: {links}")
    return [f"Providers page links: {sorted(links.values())}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", default=str(REPO / ".venv"), help="the environment with Airflow and the provider")
    parser.add_argument("--update-docs", action="store_true", help="copy the form's screenshot into docs/")
    parser.add_argument("--keep", action="store_true", help="keep the temporary AIRFLOW_HOME (logs)")
    args = parser.parse_args(argv)
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not Path(binary).exists():
            print(f"ui-test: {binary} is missing (Debian packages chromium and chromium-driver)", file=sys.stderr)
            return 2
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for drivers online
    began = time.monotonic()
    try:
        notes = run(args)
    except (Failed, WebDriverException, subprocess.CalledProcessError) as err:
        print(f"ui-test: FAILED: {err}", file=sys.stderr)
        return 1
    for note in notes:
        print(f"ui-test: {note}")
    print(f"ui-test: passed in {time.monotonic() - began:.0f} s; screenshots in {RESULTS.relative_to(REPO)}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
