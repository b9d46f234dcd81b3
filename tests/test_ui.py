"""The web UI in headless Chromium (Debian's ``chromium``, driven by Playwright): upload a sample call
through the page, watch it finish, open its call page, then the calls list, jobs and dashboard.

Screenshots go to ``test-artifacts/ui/``:

* ``call-page.png``: the uploaded call as the pipeline stored it (analysis is off in tests):
  audio player, speaker timeline, transcript by speaker with timestamps, metrics.
* ``call-page-analysed.png``: the same call after the test stores an audit on it in the shape the
  Analyser writes (sentiment trajectory with evidence, compliance checklist, flags, category), so
  the analysis panels are shown with data.
* ``dashboard.png``: the dashboard over the uploaded calls plus a dozen seeded audited calls.
* ``upload.png``: the upload page once the task is done (progress bar full, per-file status).
* ``call-page-reviewed.png``: a call after a reviewer corrected its labels with the page's form.

The app is the one tests/test_serve_ray.py starts (shared when both run in one session).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pipeline.analysis_schema import (
    Analysis,
    CallbackResult,
    ComplianceItemResult,
    Evidence,
    ReviewFlag,
    RoleSentiment,
    SentimentPoint,
    SentimentResult,
)
from pipeline.records import CallRecord, make_record_id
from pipeline.save import CallWriter
from pipeline.store.store import CallStore
from serve_app.intake import UploadStore, upload_dir
from serve_app.launcher import LocalServer
from tests.conftest import REPO, SAMPLES
from tests.store_fixtures import make_analysis, make_record
from tests.test_serve_ray import serve_session

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "test-artifacts" / "ui"
UPLOAD = "angry_complaint.mp3"


def poll_until(condition: Callable[[], bool], timeout_s: float, every_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(every_s)


@pytest.fixture(scope="session")
def ui_server(mongo_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with serve_session(mongo_server, tmp_path_factory.mktemp("serve-home")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def page(browser: Any, ui_server: LocalServer) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    tab.problems = []
    tab.on("console", lambda msg: msg.type == "error" and tab.problems.append(f"console: {msg.text}"))
    tab.on("pageerror", lambda err: tab.problems.append(f"page error: {err}"))
    # Everything must come from the app itself: no CDN, no fonts, no trackers.
    tab.on(
        "request",
        lambda req: req.url.startswith((ui_server.url, "data:", "blob:")) or tab.problems.append(f"remote: {req.url}"),
    )
    yield tab
    context.close()


@pytest.fixture(scope="module")
def store(ui_server: LocalServer) -> Iterator[CallStore]:
    connected = CallStore(ui_server.settings).connect()
    yield connected
    connected.close()


def shot(tab: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    tab.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path


def audit_for(record: CallRecord) -> Analysis:
    """An audit in the Analyser's shape for the angry-complaint call, with evidence from its own turns."""
    turns = record.turns
    customer = [t for t in turns if t.role == "customer"] or turns
    agent = [t for t in turns if t.role == "agent"] or turns

    def evidence(turn: Any) -> Evidence:
        return Evidence(quote=turn.text[:90], turn=turn.index, time_s=turn.start, role=turn.role)

    def point(phase: Any, turn: Any, label: Any, score: float) -> SentimentPoint:
        return SentimentPoint(phase=phase, label=label, score=score, evidence=evidence(turn))

    return Analysis(
        category="Unnecessary Call",
        subcategory="Complaint",
        category_confidence=0.86,
        summary="Missed appointment and a wrong £60 charge; the agent refunded it and offered a free visit, "
        "which the customer refused.",
        sentiment=SentimentResult(
            customer=RoleSentiment(
                label="negative",
                score=-0.8,
                trajectory=[
                    point("start", customer[0], "negative", -0.6),
                    point("middle", customer[len(customer) // 2], "negative", -0.9),
                    point("end", customer[-1], "negative", -0.7),
                ],
            ),
            agent=RoleSentiment(
                label="positive",
                score=0.5,
                trajectory=[
                    point("start", agent[0], "positive", 0.6),
                    point("middle", agent[len(agent) // 2], "neutral", 0.2),
                    point("end", agent[-1], "positive", 0.4),
                ],
            ),
        ),
        compliance=[
            ComplianceItemResult(
                id="greeting", description="Greets and names the company", status="pass", evidence=[evidence(agent[0])]
            ),
            ComplianceItemResult(
                id="identity_verification",
                description="Verifies the caller's identity",
                status="pass",
                evidence=[evidence(agent[min(1, len(agent) - 1)])],
            ),
            ComplianceItemResult(
                id="further_help",
                description="Asks whether there is anything else",
                status="fail",
                reason="never asked",
            ),
            ComplianceItemResult(id="closing", description="Closes the call politely", status="pass"),
        ],
        callback=CallbackResult(promised=False),
        keywords=["refund", "missed appointment", "charge"],
        flags=[
            ReviewFlag(name="negative_sentiment", reason="customer negative at the end", severity="high"),
            ReviewFlag(name="complaint", reason="complaint about a missed visit and a charge", severity="medium"),
        ],
    )


def seed_dashboard(store: CallStore) -> None:
    """A dozen audited calls over five days and three agents, so the charts have something to draw."""
    day0 = datetime(2026, 11, 17, 9, 0, tzinfo=timezone.utc)
    plan = [
        ("AG017", "Potential Customer", "positive", {"greeting": "pass", "closing": "pass"}, ()),
        ("AG017", "Potential Customer", "neutral", {"greeting": "pass", "closing": "pass"}, ()),
        ("AG017", "Unnecessary Call", "negative", {"greeting": "pass", "closing": "fail"}, ("complaint",)),
        ("AG023", "Potential Customer", "positive", {"greeting": "pass", "closing": "pass"}, ()),
        ("AG023", "Unnecessary Call", "neutral", {"greeting": "fail", "closing": "pass"}, ("compliance_failure",)),
        ("AG023", "Potential Customer", "positive", {"greeting": "pass", "closing": "pass"}, ()),
        ("AG031", "Empty Call", None, {}, ("empty_call",)),
        ("AG031", "Unnecessary Call", "negative", {"greeting": "pass", "closing": "fail"}, ("negative_sentiment",)),
        ("AG017", "Potential Customer", "positive", {"greeting": "pass", "closing": "pass"}, ("callback_promised",)),
        ("AG023", "Uncertain", "neutral", {"greeting": "pass", "closing": "pass"}, ("uncertain_category",)),
        ("AG031", "Potential Customer", "neutral", {"greeting": "pass", "closing": "pass"}, ()),
        ("AG017", "Unnecessary Call", "negative", {"greeting": "pass", "closing": "pass"}, ("complaint",)),
    ]
    records = [
        make_record(
            f"seeded-{i:02d}",
            agent=agent,
            customer=f"CU5{i:03d}",
            call_time=day0 + timedelta(days=i % 5, hours=i),
            analysis=make_analysis(category=category, sentiment=sentiment, compliance=checks, flags=flags),
            duration_s=60.0 + 7 * i,
            talk_ratio=0.4 + 0.03 * (i % 6),
        )
        for i, (agent, category, sentiment, checks, flags) in enumerate(plan)
    ]
    result = CallWriter(store.settings, store).save(records)
    assert not result.failed


def test_upload_follow_and_open_call(page: Any, ui_server: LocalServer, store: CallStore) -> None:
    sample = SAMPLES / UPLOAD
    if not sample.exists():
        pytest.skip(f"sample {UPLOAD} is missing")
    page.goto(f"{ui_server.url}/#/upload")
    form = page.locator("form.upload[data-kind=audio]")
    form.locator("input[type=file]").set_input_files(str(sample))
    form.locator("input[name=agent_id]").fill("AG017")
    form.locator("input[name=customer_id]").fill("CU1077")
    form.locator("input[name=call_time]").fill("2026-11-19T17:05:00")
    form.locator("button[type=submit]").click()

    # Progress bar, then the task panel polling until the file is done.
    page.wait_for_selector("form.upload[data-kind=audio] .task-summary", timeout=30_000)
    page.wait_for_selector("[data-task-status=done]", timeout=180_000)
    row = form.locator(f"tr[data-file='{UPLOAD}']")
    assert row.get_attribute("data-status") == "done"
    assert form.locator("progress").evaluate("p => p.value") == 100

    shot(page, "upload.png")

    row.locator("a").click()
    page.wait_for_selector("ol.transcript li.turn")
    turns = page.locator("ol.transcript li.turn")
    assert turns.count() >= 4
    roles = {turns.nth(i).locator(".speaker").inner_text().lower() for i in range(turns.count())}
    assert roles == {"agent", "customer"}
    assert re.fullmatch(r"\d+:\d\d", turns.nth(1).locator("a.time").inner_text())
    assert "refund" in page.locator("ol.transcript").inner_text().lower()
    assert page.locator("svg[aria-label='speaker timeline'] rect.turn").count() == turns.count()
    assert "Agent: AG017" in page.locator(".call-head .facts").inner_text()

    # The audio element streams from the app and can play.
    # Polled from Python: wait_for_function evaluates its predicate with eval() in the page, which the
    # app's Content-Security-Policy (script-src 'self') forbids once the first check fails.
    poll_until(lambda: page.locator("audio.player").evaluate("a => a.readyState") >= 1, timeout_s=20)
    duration = page.locator("audio.player").evaluate("a => a.duration")
    assert 70 < duration < 90
    page.locator("ol.transcript li.turn").nth(2).locator("a.time").click()
    shot(page, "call-page.png")

    # The same call once audited: panels for sentiment, compliance, flags, category.
    record_id = page.url.rsplit("/", 1)[-1]
    record = store.get_record(record_id)
    assert record is not None
    record.analysis = audit_for(record)
    record.analysis_status = "done"
    assert not store.upsert_record(record).failed
    page.reload()
    page.wait_for_selector("ul.checklist li")
    assert page.locator("#call-category").inner_text() == "Unnecessary Call / Complaint"
    chart = page.locator("svg[aria-label='sentiment over the call']")
    assert chart.locator("circle.dot").count() == 6 and chart.locator("polyline").count() == 2
    assert page.locator("ul.checklist > li").count() == 4
    assert page.locator("ul.checklist > li.check-fail").count() == 1
    assert page.locator("ul.flags li").count() == 2
    assert page.locator("#call-follow-up").count() == 0
    shot(page, "call-page-analysed.png")

    # A follow-up call that took an earlier call's label links to that call.
    record.analysis.follow_up_of = "0123456789abcdef01234567-p1"
    assert not store.upsert_record(record).failed
    page.reload()
    page.wait_for_selector("#call-follow-up a")
    assert page.locator("#call-follow-up a").get_attribute("href") == "#/calls/0123456789abcdef01234567-p1"
    assert page.locator("#call-category").inner_text() == "Unnecessary Call / Complaint"


def test_jobs_and_calls_views(page: Any, ui_server: LocalServer) -> None:
    page.goto(f"{ui_server.url}/#/jobs")
    page.wait_for_selector("table.list tbody tr")
    assert "upload" in page.locator("table.list").inner_text()

    page.goto(f"{ui_server.url}/#/calls")
    page.wait_for_selector("table.list tbody tr")
    page.locator("form.filters input[name=agent_id]").fill("AG017")
    page.locator("form.filters button[type=submit]").click()
    poll_until(lambda: "agent_id=AG017" in page.evaluate("() => location.hash"), timeout_s=30)
    page.wait_for_selector(f"tr:has-text('{UPLOAD}')")
    rows = page.locator("table.list tbody tr")
    assert all("AG017" in rows.nth(i).inner_text() for i in range(rows.count()))
    with page.expect_download() as download:
        page.locator("form.filters button", has_text="Export CSV").click()
    exported = Path(download.value.path()).read_text()
    assert exported.startswith("record_id,") and UPLOAD in exported


def test_dashboard(page: Any, ui_server: LocalServer, store: CallStore) -> None:
    seed_dashboard(store)
    page.goto(f"{ui_server.url}/#/dashboard")
    page.wait_for_selector("svg[aria-label='calls per category'] rect.bar")
    categories = page.locator("svg[aria-label='calls per category']").text_content() or ""
    assert "Potential Customer" in categories and "Unnecessary Call" in categories
    assert page.locator("svg[aria-label='calls per day'] rect.bar").count() >= 5
    assert page.locator("svg[aria-label='average customer sentiment per day'] circle.dot").count() >= 5
    scorecards = page.locator("section:has(h2:text('Agent scorecards')) tbody tr")
    agents = {scorecards.nth(i).locator("td").first.inner_text() for i in range(scorecards.count())}
    assert {"AG017", "AG023", "AG031"} <= agents
    shot(page, "dashboard.png")


def test_reviewer_corrects_labels_on_the_call_page(page: Any, ui_server: LocalServer, store: CallStore) -> None:
    sample = SAMPLES / "normal_service.ogg"
    if not sample.exists():
        pytest.skip("sample normal_service.ogg is missing")
    # An audited call whose recording the server keeps (the page plays it), stored as the pipeline would.
    data = sample.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    UploadStore(upload_dir(ui_server.settings)).save(sha, "ogg", data)
    record = make_record("ui-review", agent="AG060", analysis=make_analysis(category="Potential Customer"))
    record = record.model_copy(update={"audio_sha256": sha, "record_id": make_record_id(sha, record.pipeline_version)})
    assert not CallWriter(store.settings, store).save([record]).failed

    page.goto(f"{ui_server.url}/#/calls/{record.record_id}")
    form = page.locator("form.correction")
    form.locator("select[name=category]").wait_for()
    assert page.locator("#call-review").inner_text() == "Not reviewed yet."
    assert form.locator("select[name=subcategory]").is_disabled()  # Potential Customer has none
    form.locator("select[name=category]").select_option("Unnecessary Call")
    form.locator("select[name=subcategory]").select_option("Complaint")
    form.locator("select[name=customer_sentiment]").select_option("negative")
    form.locator("input[name=reviewer]").fill("Ayşe QA")
    form.locator("button[type=submit]").click()

    page.wait_for_selector("#call-review.reviewed")
    assert page.locator("#call-review").inner_text().startswith("Reviewed by Ayşe QA at ")
    assert page.locator("#call-category").inner_text() == "Unnecessary Call / Complaint"
    assert "complaint" in page.locator("ul.flags").inner_text()
    # The form shows the corrected labels, and remembers the reviewer for the next call.
    assert page.locator("form.correction select[name=subcategory]").input_value() == "Complaint"
    assert page.locator("form.correction input[name=reviewer]").input_value() == "Ayşe QA"
    stored = store.get_record(record.record_id)
    assert stored is not None and stored.analysis is not None and stored.analysis.review is not None
    assert stored.analysis.review.reviewer == "Ayşe QA" and stored.analysis.subcategory == "Complaint"
    shot(page, "call-page-reviewed.png")


def test_api_docs_render_offline(page: Any, ui_server: LocalServer) -> None:
    page.goto(f"{ui_server.url}/docs")
    page.wait_for_selector(".swagger-ui .opblock-summary-path")
    paths = page.locator(".swagger-ui .opblock-summary-path").all_inner_texts()
    assert any("/upload/zip/" in p for p in paths) and any("/jobs/{job_id}" in p for p in paths)
    page.goto(f"{ui_server.url}/redoc")
    page.locator("h2", has_text="Upload a ZIP of recordings").first.wait_for(timeout=30_000)


def test_page_made_no_remote_requests_or_errors(page: Any) -> None:
    assert page.problems == []
