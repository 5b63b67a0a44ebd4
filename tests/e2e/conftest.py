"""Browser tests: headless Chromium (the machine's, driven by Playwright through its executable path)
against the real stack — gunicorn web and a Celery worker as subprocesses with a private Redis —
and the orchestrator emulator in process with fast timings. One stack serves the whole module."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest
import redis
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from flags import env
from tests.harness import ROOT, Redis, Stack, find_chromium

CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = ROOT / "test-artifacts"
FAST = {"queue_seconds": 0.3, "seconds_per_epoch": 0.3}


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(
        callback_backoff=0.1,
        tick_seconds=0.05,
        queue_seconds=FAST["queue_seconds"],
        seconds_per_epoch=FAST["seconds_per_epoch"],
    )
    server = EmulatorServer("127.0.0.1", 0, config)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(django_db_setup: None, emulator: EmulatorServer) -> Iterator[Stack]:
    # django_db_setup: the subprocesses use the test database, so it must exist first.
    media = tempfile.mkdtemp(prefix="e2e-media-")
    private_redis = Redis()
    private_redis.start()
    s = Stack(orchestrator_url=emulator.url, redis=private_redis, MEDIA_ROOT=media)
    for name in [k for k in s.env if k.startswith("FEATURE_FLAG_")]:
        del s.env[name]  # a developer's overrides must not decide what the pages show
    s.start_web()
    s.start_worker(concurrency=1)
    yield s
    s.stop()
    private_redis.stop()
    shutil.rmtree(media, ignore_errors=True)


@pytest.fixture(autouse=True)
def _no_env_override() -> Iterator[None]:
    with env.override():
        yield


@pytest.fixture(autouse=True)
def _emulator_fast(emulator: EmulatorServer) -> Iterator[None]:
    emulator.update_faults(**FAST)
    yield
    emulator.update_faults(**FAST)


def stack_cache_clear(stack: Stack) -> None:
    """Forget what the web and worker processes cached (waffle's rows among it) after the test
    changed flags in the database. Only the cache's keys: the broker's live in the same Redis."""
    client = redis.Redis.from_url(stack.redis.url)
    keys = list(client.scan_iter("training:*"))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Playwright's sync API keeps an asyncio loop on this thread, and Django then refuses the
    # tests' own synchronous database calls on it; they are safe here (same thread, no awaits).
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            # Without one, tests/conftest.py skipped the browser tests before they got here.
            executable = find_chromium() or None
            chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if saved is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(20_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"e2e-{name}.png"), full_page=True)


def login(page: Page, stack: Stack, username: str, *, shot: str = "") -> None:
    page.goto(f"{stack.url}/accounts/login/")
    if shot:
        screenshot(page, shot)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"pw-{username}")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{stack.url}/runs/")
