"""The operations page in a real browser (Debian's chromium, driven by Playwright) on the
running fleet: a bad token is refused, the admin token logs in (kept in session storage,
never in the URL), a known node shows, a click puts it into maintenance and the page shows
the change. A screenshot is saved in the test's output folder."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import RunningFleet, auth, seed_pool

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
#: What Chromium needs on these machines (root, no GPU, a closed network).
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser() -> object:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs Debian's package")
        pytest.skip("no chromium here (apt-get install chromium) for the browser test")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=FLAGS, headless=True
        )
        yield launched
        launched.close()


def test_the_page_logs_in_shows_the_fleet_and_puts_a_node_into_maintenance(
    http: httpx.Client, fleet: RunningFleet, browser: object, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    pool = seed_pool(http, fleet.admin_token, "ops", devices=2)
    lease = http.post(
        "/scheduler/devices/allocate",
        headers=auth(pool.token),
        json={"durationMinutes": 5, "preferredSpecs": pool.specs},
    ).json()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page.goto(f"{fleet.api_url}/ops")

    page.fill("#token", "pf_not_a_real_token")
    page.click("#login button[type=submit]")
    expect(page.locator("#login-error")).to_have_text("That token is not valid.", timeout=15_000)

    page.fill("#token", fleet.admin_token)
    page.click("#login button[type=submit]")
    row = page.locator(f'#fleet tr[data-node="{pool.label["pool"]}"]')
    expect(row).to_be_visible(timeout=15_000)
    expect(page.locator("#login")).to_be_hidden()
    expect(row.locator("td.status")).to_have_text("ready")
    expect(row).to_contain_text("allocated 1")
    expect(page.locator("#leases")).to_contain_text(lease["allocationId"][:8])
    assert fleet.admin_token not in page.url
    stored = page.evaluate("sessionStorage.getItem('phonefleet-admin-token')")
    assert stored == fleet.admin_token

    row.get_by_role("button", name="Maintenance", exact=True).click()

    expect(row.locator("td.status")).to_have_text("maintenance", timeout=15_000)
    expect(page.locator("#events")).to_contain_text("node.maintenance", timeout=15_000)
    screenshot = tmp_path / "ops-page.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot: {screenshot}")
    assert screenshot.stat().st_size > 10_000
    node = http.get(f"/scheduler/nodes/{pool.node_id}", headers=auth(fleet.admin_token)).json()
    assert node["status"] == "maintenance"
    http.post(
        f"/scheduler/nodes/{pool.node_id}/maintenance",
        headers=auth(fleet.admin_token),
        json={"enable": False},
    )


def test_the_page_is_served_with_its_own_files_only(http: httpx.Client) -> None:
    page = http.get("/ops")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for asset, media in (("/ops/ops.js", "text/javascript"), ("/ops/ops.css", "text/css")):
        r = http.get(asset)
        assert r.status_code == 200 and r.headers["content-type"].startswith(media)
    assert "http" not in page.text.replace("http-equiv", "")  # nothing fetched from elsewhere
