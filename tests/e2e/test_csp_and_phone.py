"""Every page in Chromium under the enforcing Content-Security-Policy: no violation and no console
error, Swagger UI and admin included; and at phone width (390 px) no sideways scroll and a
navigation that folds behind a Menu button."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Locator, Page, expect
from waffle.models import Flag

from tests.conftest import make_user
from tests.e2e.conftest import login, screenshot
from tests.harness import Stack
from tests.training.web.helpers import make_run

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def nav(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Main")


def staff_mod() -> User:
    return make_user("maude", "mod", is_staff=True, is_superuser=True)


def pages(stack: Stack, user: User) -> list[tuple[str, str]]:
    """(name, path) of every page a person can open; `ready` waits for what the page draws."""
    run = make_run(user)
    flag = Flag.objects.get(name="aiToolkitTraining")
    return [
        ("runs", "/runs/"),
        ("run", f"/runs/{run.pk}"),
        ("new-run", "/train/new"),
        ("features", "/settings/features"),
        ("console", "/mod/training/"),
        ("experiments", "/mod/experiments/"),
        ("admin", "/admin/"),
        ("admin-run", f"/admin/training/trainingrun/{run.pk}/change/"),
        ("admin-flag", f"/admin/waffle/flag/{flag.pk}/change/"),
        ("admin-user", f"/admin/auth/user/{user.pk}/change/"),
        ("api-docs", "/api/docs/"),
    ]


class Watch:
    """Console errors, uncaught exceptions and CSP violations of one browser context."""

    def __init__(self, context: BrowserContext) -> None:
        self.problems: list[str] = []
        context.add_init_script(
            "document.addEventListener('securitypolicyviolation', e => console.error("
            "'CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile +"
            "':' + e.lineNumber))"
        )

    def attach(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"{page.url}: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.problems.append(f"{message.location.get('url')}: {message.text}")


@pytest.fixture
def watched(browser: Browser) -> Iterator[tuple[Page, Watch]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    watch = Watch(context)
    page = context.new_page()
    watch.attach(page)
    yield page, watch
    context.close()


def open_page(page: Page, stack: Stack, path: str) -> None:
    response = page.goto(f"{stack.url}{path}")
    assert response is not None and response.status == 200, path
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy, path
    if path == "/api/docs/":
        expect(page.locator(".swagger-ui .info .title")).to_contain_text(
            "LoRA training service API"
        )
    page.wait_for_load_state("networkidle")


def test_every_page_runs_under_the_policy_without_a_violation_or_console_error(
    stack: Stack, watched: tuple[Page, Watch]
) -> None:
    page, watch = watched
    user = staff_mod()
    open_page(page, stack, "/accounts/login/")
    login(page, stack, user.username)
    for name, path in pages(stack, user):
        open_page(page, stack, path)
        screenshot(page, f"csp-{name}")
    assert watch.problems == []


def test_at_phone_width_no_page_scrolls_sideways_and_the_menu_folds(
    stack: Stack, browser: Browser
) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    context.set_default_timeout(20_000)
    watch = Watch(context)
    page = context.new_page()
    watch.attach(page)
    user = staff_mod()
    open_page(page, stack, "/accounts/login/")
    login(page, stack, user.username)
    wide = []
    for name, path in [("login", "/accounts/login/"), *pages(stack, user)]:
        if name == "login":
            continue  # logged in now; the login page was opened above
        open_page(page, stack, path)
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        if overflow > 0:
            wide.append(f"{path}: {overflow}px too wide")
            screenshot(page, f"phone-wide-{name}")
    assert wide == []

    page.goto(f"{stack.url}/runs/")
    menu = page.get_by_role("button", name="Menu")
    expect(menu).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(nav(page).get_by_role("link", name="New run")).to_be_hidden()
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(nav(page).get_by_role("link", name="New run")).to_be_visible()
    screenshot(page, "phone-menu-open")
    page.keyboard.press("Escape")
    expect(nav(page).get_by_role("link", name="New run")).to_be_hidden()
    page.get_by_role("button", name="Menu").click()
    nav(page).get_by_role("link", name="My runs").click()
    page.wait_for_url(f"{stack.url}/runs/")
    assert watch.problems == []
    context.close()


def test_on_a_wide_screen_the_menu_button_is_not_shown(stack: Stack, page: Page) -> None:
    make_user("olivia")
    login(page, stack, "olivia")
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    expect(nav(page).get_by_role("link", name="New run")).to_be_visible()


def test_the_login_page_at_phone_width(stack: Stack, browser: Browser) -> None:
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(f"{stack.url}/accounts/login/")
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    context.close()
