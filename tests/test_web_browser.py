"""The web page in a real browser (Debian's chromium, driven by selenium) against a real
`rag-server` process: sign in, ask, check a citation in its document, a refusal, uploads and
deletes, what a reader sees, a hostile document kept inert, and an axe-core accessibility check.

Chromium, chromedriver and npm must be present (`bash .ci/ensure-chromium`, which `make test`
runs): without them these tests fail, never skip. axe-core is fetched once with `npm pack` into
pytest's cache folder (git-ignored). WEB_SCREENSHOTS=<folder> keeps the screenshots there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as visible
from selenium.webdriver.support.wait import WebDriverWait

from rag_core.settings import load_settings
from tests.conftest import EXAMPLES, add_key
from tests.processes import RagServer, rag_env

pytestmark = pytest.mark.slow

AXE_VERSION = "4.11.4"
# Plain text, so that every byte of markup reaches the index as written (a Markdown file is read
# as its rendered page, which would leave the tags out): the page must show it as text.
HOSTILE = """<img src=x onerror="window.__pwned='title'"> Lantern notes

The lantern room door code is 4417 <script>window.__pwned='script'</script> for all staff.
Visitors sign the <b onmouseover="window.__pwned='handler'">red book</b> at the desk.
Read the [badge rules](javascript:window.__pwned='link') before the tour.
![tracking pixel](https://evil.example/pixel.png?leak=1)
"""
PAYROLL = "Payroll calendar.\n\nSalaries for the HR group are paid on the 25th of each month.\n"


@dataclass
class Served:
    server: RagServer
    admin: str
    reader: str


def _browser_binaries() -> tuple[str, str]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.fail("chromium and chromium-driver are required: run `bash .ci/ensure-chromium`")
    return chromium, driver


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A real server; the examples arrive as uploads (the pipeline `rag-ingest` runs, and the
    original files are kept, so the page can open them), plus a hostile and an "hr" document."""
    data = tmp_path_factory.mktemp("web") / "data"
    settings = load_settings(data_dir=data)
    admin = add_key(settings, "admin", key_id="web-admin")
    reader = add_key(settings, "reader", groups=[], key_id="web-reader")  # public documents only
    server = RagServer(rag_env(data), token=admin).start()
    try:
        server.wait_ready(timeout=240)
        uploads = [(p.name, p.read_bytes(), "") for p in sorted(EXAMPLES.iterdir())]
        uploads += [("lantern.txt", HOSTILE.encode(), ""), ("payroll.txt", PAYROLL.encode(), "hr")]
        for name, body, groups in uploads:
            up = server.call(
                "POST", "/v1/documents/", files={"file": (name, body)}, data={"groups": groups}
            )
            assert up.status_code == 201, up.text
        yield Served(server, admin, reader)
    finally:
        log = server.stop(timeout=30)
        assert admin not in log and reader not in log  # no key in any log line


@pytest.fixture(scope="module")
def axe_source(request: pytest.FixtureRequest) -> str:
    """axe-core's script, from the npm registry once, then from pytest's cache."""
    folder = Path(request.config.cache.mkdir(f"axe-core-{AXE_VERSION}"))
    script = folder / "axe.min.js"
    if not script.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is required to fetch axe-core: run `bash .ci/ensure-chromium`")
        packed = subprocess.run(
            [npm, "pack", f"axe-core@{AXE_VERSION}", "--pack-destination", str(folder), "--json"],
            capture_output=True, text=True, timeout=300, check=True,
        )  # fmt: skip
        tarball = folder / json.loads(packed.stdout)[0]["filename"]
        with tarfile.open(tarball) as tar:
            member = tar.extractfile("package/axe.min.js")
            assert member is not None
            script.write_bytes(member.read())
        tarball.unlink()
    return script.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    chromium, driver = _browser_binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000", "--lang=en-GB"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("WEB_SCREENSHOTS") or tmp_path_factory.mktemp("screens"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ---- helpers ----
def wait(browser: WebDriver, seconds: float = 60) -> WebDriverWait[WebDriver]:
    return WebDriverWait(browser, seconds)


def shown(browser: WebDriver, css: str, seconds: float = 60) -> WebElement:
    element: WebElement = wait(browser, seconds).until(
        visible.visibility_of_element_located((By.CSS_SELECTOR, css))
    )
    return element


def sign_in(browser: WebDriver, served: Served, token: str) -> None:
    browser.get(served.server.base + "/")
    browser.execute_script("sessionStorage.clear()")
    browser.get(served.server.base + "/")
    shown(browser, "#api-key").send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "#signin-form button").click()
    shown(browser, "#view-ask")


def ask(browser: WebDriver, question: str) -> str:
    """Asks from the keyboard (Enter in the question box), waits for the verified answer, returns
    the status line."""
    box = shown(browser, "#question")
    box.clear()
    box.send_keys(question, Keys.ENTER)
    wait(browser, 120).until(
        lambda b: b.find_element(By.ID, "status").get_attribute("class") != "status"
    )
    return str(browser.find_element(By.ID, "status").text)


def accessibility(browser: WebDriver, axe_source: str) -> list[str]:
    """axe-core's violations on the page as it is now (WCAG 2 A/AA and best practices)."""
    browser.execute_script(axe_source)
    violations = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document).then((r) => done(r.violations), (e) => done([{id: String(e), nodes: []}]));"
    )
    return [f"{v['id']}: {[n.get('target') for n in v['nodes']]}" for v in violations]


def texts(browser: WebDriver, css: str) -> list[str]:
    return [e.text for e in browser.find_elements(By.CSS_SELECTOR, css)]


def assert_inert(browser: WebDriver) -> None:
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018
    assert browser.execute_script("return window.__pwned === undefined")
    injected = (
        "main script, main img, main a[href^='javascript'], main [onerror], main [onmouseover]"
    )
    assert browser.find_elements(By.CSS_SELECTOR, injected) == []


# ---- the tests, in the order a person would go ----
def test_sign_in_ask_and_check_a_citation_in_its_document(
    served: Served, browser: WebDriver, axe_source: str, shots: Path
) -> None:
    browser.get(served.server.base + "/")
    shown(browser, "#api-key")
    assert accessibility(browser, axe_source) == []
    browser.save_screenshot(str(shots / "sign-in.png"))
    sign_in(browser, served, served.admin)
    assert served.admin not in browser.current_url
    status = ask(browser, "How many days of paid annual leave do employees get?")
    assert status in {"Answered from the documents", "Quoted from the sources"}
    assert "27 days" in browser.find_element(By.ID, "answer").text
    assert not browser.find_element(By.ID, "read-as").is_displayed()  # searched for as typed
    cards = browser.find_elements(By.CSS_SELECTOR, "#citations .card")
    assert cards
    quote = cards[0].find_element(By.CSS_SELECTOR, ".quote").text
    assert "27 days" in quote
    assert accessibility(browser, axe_source) == []
    browser.save_screenshot(str(shots / "answer.png"))
    browser.execute_cdp_cmd(
        "Browser.grantPermissions",
        {
            "origin": served.server.base,
            "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"],
        },
    )
    browser.find_element(By.ID, "copy").click()
    wait(browser).until(lambda b: b.find_element(By.ID, "copy-note").text == "Copied.")
    copied = browser.execute_async_script(
        "navigator.clipboard.readText().then(arguments[0], (e) => arguments[0](String(e)))"
    )
    assert copied.startswith(browser.find_element(By.ID, "answer").text + "\n\nSources:\n[1] ")
    assert quote.strip("“”") in copied

    cards[0].send_keys(Keys.ENTER)  # a card is a button: the keyboard opens it too
    mark = shown(browser, "#doc-text mark#quote")
    assert mark.text == quote
    # Scrolled to the quote, and the quote has the focus (keyboard and screen reader users).
    assert browser.execute_script(
        "const m = arguments[0].getBoundingClientRect(), v = arguments[1].getBoundingClientRect();"
        "return m.top >= v.top && m.bottom <= v.bottom && document.activeElement === arguments[0];",
        mark, browser.find_element(By.ID, "doc-text"),
    )  # fmt: skip
    assert accessibility(browser, axe_source) == []
    browser.save_screenshot(str(shots / "citation-in-document.png"))
    browser.find_element(By.ID, "doc-back").click()
    assert texts(browser, "#history li") == ["How many days of paid annual leave do employees get?"]


def test_a_misspelt_question_is_answered_saying_what_was_searched_for(
    served: Served, browser: WebDriver
) -> None:
    sign_in(browser, served, served.reader)
    status = ask(browser, "how many dayz of paid anual leave do i get per yeer?")
    assert status in {"Answered from the documents", "Quoted from the sources"}
    assert "27 days" in browser.find_element(By.ID, "answer").text
    read_as = browser.find_element(By.ID, "read-as")
    assert read_as.is_displayed()
    assert read_as.text == "Searched for: how many days of paid annual leave do i get per year?"


def test_a_pdf_citation_opens_the_original_file_at_its_page(
    served: Served, browser: WebDriver
) -> None:
    sign_in(browser, served, served.reader)
    ask(browser, "What is the maximum hotel cost per night?")
    card = browser.find_element(By.CSS_SELECTOR, "#citations .card")
    assert "Expenses" in card.text
    page = int(card.find_element(By.CSS_SELECTOR, ".where").text.rsplit("page ", 1)[1])
    card.click()
    link = shown(browser, "#doc-file")
    assert link.text == f"Open the original file at page {page}"
    main, before = browser.current_window_handle, set(browser.window_handles)
    link.click()
    wait(browser).until(lambda b: len(b.window_handles) > len(before))
    (opened,) = set(browser.window_handles) - before
    browser.switch_to.window(opened)
    try:
        url = browser.current_url
        assert url.startswith(f"blob:{served.server.base}/") and url.endswith(f"#page={page}")
    finally:
        browser.close()
        browser.switch_to.window(main)


def test_an_unanswerable_question_shows_the_closest_passages_as_such(
    served: Served, browser: WebDriver, axe_source: str, shots: Path
) -> None:
    sign_in(browser, served, served.admin)
    status = ask(browser, "What was the winning score of the 1954 chess olympiad?")
    assert status == "No evidence in the documents"
    assert not browser.find_element(By.ID, "citations-box").is_displayed()
    assert not browser.find_element(By.ID, "copy").is_displayed()
    related = browser.find_elements(By.CSS_SELECTOR, "#related .card")
    assert related and browser.find_element(By.ID, "related-box").is_displayed()
    assert "do not answer" in browser.find_element(By.ID, "related-box").text
    assert accessibility(browser, axe_source) == []
    browser.save_screenshot(str(shots / "refusal.png"))


def test_an_admin_uploads_files_and_deletes_one(
    served: Served, browser: WebDriver, axe_source: str, shots: Path, tmp_path: Path
) -> None:
    sign_in(browser, served, served.admin)
    browser.find_element(By.ID, "nav-docs").click()
    shown(browser, "#docs-body tr")
    good = tmp_path / "canteen.txt"
    good.write_text("Canteen hours.\n\nThe canteen serves lunch from 11:45 to 14:15.\n")
    bad = tmp_path / "tool.exe"
    bad.write_bytes(b"MZ\x90\x00 not a document")
    shown(browser, "#upload-files").send_keys(f"{good}\n{bad}")
    browser.find_element(By.CSS_SELECTOR, "#upload-form button").click()
    wait(browser).until(lambda b: "waiting" not in " ".join(texts(b, ".upload-result")))
    results = dict(
        zip(texts(browser, ".upload-name"), texts(browser, ".upload-result"), strict=True)
    )
    assert results["canteen.txt"].startswith("added")
    assert results["tool.exe"].startswith("rejected: unsupported file type")
    wait(browser).until(lambda b: "uploads/canteen.txt" in " ".join(texts(b, "#docs-body td")))
    assert accessibility(browser, axe_source) == []
    browser.save_screenshot(str(shots / "documents-admin.png"))

    search = browser.find_element(By.ID, "docs-q")
    search.send_keys("canteen\n")
    wait(browser).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#docs-body tr")) == 1)
    browser.find_element(By.CSS_SELECTOR, "#docs-body button.danger").click()
    dialog = shown(browser, "#confirm")
    assert "canteen" in dialog.text.lower()
    browser.find_element(By.ID, "confirm-delete").click()
    wait(browser).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#docs-body tr") == [])
    assert served.server.call("GET", "/v1/documents/uploads/canteen.txt").status_code == 404


def test_a_reader_sees_no_admin_controls_and_no_forbidden_document(
    served: Served, browser: WebDriver, axe_source: str, shots: Path
) -> None:
    sign_in(browser, served, served.reader)
    browser.find_element(By.ID, "nav-docs").click()
    shown(browser, "#docs-body tr")
    names = texts(browser, "#docs-body tr td:nth-child(2)")
    assert "uploads/lantern.txt" in names and "uploads/leave-policy.docx" in names
    assert "uploads/payroll.txt" not in names  # stamped "hr"; this key reads public documents
    controls = browser.find_elements(By.CSS_SELECTOR, "main button, main input, main th")
    shown_text = [c.text or c.get_attribute("type") for c in controls if c.is_displayed()]
    assert "Delete" not in shown_text and "Actions" not in shown_text and "file" not in shown_text
    assert not browser.find_element(By.ID, "upload").is_displayed()
    assert accessibility(browser, axe_source) == []
    browser.set_window_size(390, 844)  # a phone
    try:
        browser.save_screenshot(str(shots / "documents-reader-narrow.png"))
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390  # nothing forces sideways scrolling of the page
    finally:
        browser.set_window_size(1280, 1000)


def test_a_hostile_document_is_shown_as_text_and_stays_inert(
    served: Served, browser: webdriver.Chrome, shots: Path
) -> None:
    sign_in(browser, served, served.reader)
    status = ask(browser, "What is the lantern room door code?")
    assert status != "No evidence in the documents"
    titles = texts(browser, "#citations .title")
    assert titles and titles[0].startswith("<img src=x onerror=")  # the heading, as text
    assert_inert(browser)
    browser.find_element(By.CSS_SELECTOR, "#citations .card").click()
    shown(browser, "#doc-text mark#quote")
    text = browser.find_element(By.ID, "doc-text").text
    assert "<script>window.__pwned='script'</script>" in text
    assert "[badge rules](javascript:" in text and "![tracking pixel](https://evil" in text
    assert_inert(browser)
    browser.save_screenshot(str(shots / "hostile-document.png"))
    # Nothing was fetched from another origin (the pixel) and nothing broke the policy.
    logs = [e["message"] for e in browser.get_log("browser")]  # type: ignore[no-untyped-call]
    assert not [m for m in logs if "evil.example" in m or "Content Security Policy" in m], logs
