"""The staff page in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

Never ``playwright install``: the browser is the distribution's, at /usr/bin/chromium.
Set ``CRATEWATCH_SCREENSHOT_DIR=docs`` to refresh docs/staff-page.png (generated catalog only).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from service.testing.images import new_cover_png
from service.testing.server import LiveServer
from service.testing.system_deps import recorded_reason

CHROMIUM = "/usr/bin/chromium"
KEY = "page-key"
playwright_api = pytest.importorskip(
    "playwright.sync_api",
    reason="SKIP staff page test: the playwright package is missing (pip install playwright)")


@pytest.fixture
def server(tiny_model: Path, catalog_dir: Path, tmp_path: Path) -> Iterator[LiveServer]:
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"SKIP staff page test: {CHROMIUM} missing: " + recorded_reason(
            "chromium", "apt-get install chromium (`make test` installs it when run as root)"))
    live = LiveServer(catalog_dir, tmp_path / "data", tiny_model, tmp_path / "logs",
                      env={"CRATEWATCH_API_KEY": KEY, "CRATEWATCH_TIMEZONE": "UTC"})
    live.start()
    yield live
    live.stop()


def test_staff_page_identifies_adds_and_shows_a_browse(server: LiveServer, catalog_dir: Path,
                                                      tmp_path: Path) -> None:
    now = datetime.now(UTC)
    # alb-007: 4 browses (5 min apart), 1 sold; alb-003: 1 browse, 1 sold
    for album, minutes in (("alb-007", 0), ("alb-007", 5), ("alb-007", 10), ("alb-007", 15),
                           ("alb-003", 1)):
        cover = (catalog_dir / "images" / f"{album}.png").read_bytes()
        when = (now - timedelta(minutes=minutes)).isoformat()
        browse = httpx.post(f"{server.url}/identify", files={"image": ("c.png", cover)},
                            data={"camera": "till-cam", "captured_at": when},
                            headers={"X-API-Key": KEY}, timeout=60)
        assert browse.json()["identified"] == album, browse.text
    sales = f"sold_at,album_id,quantity\n{now.isoformat()},alb-007,1\n{now.isoformat()},alb-003,1\n"
    r = httpx.post(f"{server.url}/sales", files={"file": ("s.csv", sales.encode())},
                   headers={"X-API-Key": KEY}, timeout=60)
    assert r.json()["imported"] == 2, r.text
    new_cover = tmp_path / "new-cover.png"
    new_cover.write_bytes(new_cover_png(42))
    requested: list[str] = []

    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"],
                                     headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000},
                                    timezone_id="UTC")
            page.on("request", lambda req: requested.append(req.url))
            page.goto(server.url + "/")
            # Analytics needs the key: the page asks once, keeps it for the tab.
            page.fill("#key-input", KEY, timeout=30_000)
            page.click("#key-form button[type=submit]")
            page.wait_for_selector("body[data-ready='1']", timeout=60_000)
            assert page.evaluate("sessionStorage.getItem('cratewatch-api-key')") == KEY

            page.set_input_files("#identify-file", str(catalog_dir / "images" / "alb-012.png"))
            page.wait_for_selector("#matches li", timeout=60_000)
            assert "Identified" in page.inner_text("#decision")
            assert "alb-012" in page.inner_text("#decision")
            assert page.locator("#matches li").count() == 5
            assert page.get_attribute("#matches li:first-child", "data-album") == "alb-012"
            page.wait_for_function("[...document.querySelectorAll('#matches img')]"
                                   ".every(i => i.complete && i.naturalWidth > 0)")

            # Dropping a file works like choosing one.
            page.evaluate("""async () => {
                const blob = await (await fetch('/catalog/alb-020/image')).blob();
                const data = new DataTransfer();
                data.items.add(new File([blob], 'drop.png', {type: blob.type}));
                document.getElementById('drop').dispatchEvent(
                    new DragEvent('drop', {dataTransfer: data, bubbles: true}));
            }""")
            page.wait_for_selector("#matches li[data-album='alb-020']:first-child",
                                   timeout=60_000)
            assert "alb-020" in page.inner_text("#decision")

            page.set_input_files("#add-form input[name=image]", str(new_cover))
            page.fill("#add-form input[name=artist]", "Browser Test Ensemble")
            page.fill("#add-form input[name=title]", "Added Through The Form")
            page.fill("#add-form input[name=album_id]", "pw-added-1")
            page.click("#add-form button[type=submit]")
            page.wait_for_selector("#catalog-rows tr[data-album='pw-added-1']", timeout=60_000)
            assert "Added Through The Form" in page.inner_text("#catalog-rows")
            assert httpx.get(f"{server.url}/catalog/pw-added-1").status_code == 200

            row = page.locator("#album-rows tr[data-album='alb-007']")
            cells = row.locator("td").all_inner_texts()
            assert cells[0] == "alb-007" and cells[3:] == ["4", "1", "25 %"]  # made above
            assert "4 browses, 1 sold" in page.inner_text("#unsold")
            hour = datetime.now(UTC).hour
            assert float(page.get_attribute(f"#hours-chart rect[data-hour='{hour}']", "height")
                         or 0) > 0
            shot = tmp_path / "staff-page.png"
            page.screenshot(path=str(shot), full_page=True)

            page.fill("#catalog-search", "alb-02")  # delete from the list, after a confirm
            page.wait_for_selector("#catalog-rows tr[data-album='alb-021']")
            page.once("dialog", lambda dialog: dialog.accept())
            page.click("#catalog-rows tr[data-album='alb-021'] button")
            page.wait_for_selector("#catalog-rows tr[data-album='alb-021']", state="detached")
            assert httpx.get(f"{server.url}/catalog/alb-021").status_code == 404
        finally:
            browser.close()
    assert all(url.startswith(server.url) or url.startswith(("blob:", "data:"))
               for url in requested), [u for u in requested if not u.startswith(server.url)]
    assert shot.stat().st_size > 10_000
    if target := os.environ.get("CRATEWATCH_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(target) / "staff-page.png")
