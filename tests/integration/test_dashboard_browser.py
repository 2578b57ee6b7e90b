"""``alloop dashboard`` in a real browser (Debian's chromium, headless, driven by Selenium through chromedriver)
beside a live campaign: the page loads, shows the current commit and cycle, follows the campaign to its end, and
updates after a new commit. Waits on work done (commits, text on the page), never on fixed sleeps; the timeouts are
failure guards only."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_campaign_evaluation import write_evaluation_campaign

from alloop.dashboard.data import read_snapshot
from alloop.store import CampaignStore, store_path, tables
from alloop.store.resolve import is_store
from harness.dashboard import running_dashboard

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="no chromium and chromedriver on PATH (Debian: apt-get install chromium "
                                "chromium-driver)")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")

#: failure guards (s): a campaign of one cycle takes ~20 s on 2 idle cores
CAMPAIGN_TIMEOUT_S, PAGE_TIMEOUT_S = 900, 300
#: every piece of text on the page, through the shadow roots Bokeh renders into (style and script text aside)
PAGE_TEXT_JS = """
function text(node) {
  let out = node.shadowRoot ? text(node.shadowRoot) : "";
  for (const child of node.childNodes) {
    if (child.nodeType === Node.TEXT_NODE) out += child.textContent;
    else if (child.nodeType === Node.DOCUMENT_FRAGMENT_NODE
             || (child.nodeType === Node.ELEMENT_NODE && !["STYLE", "SCRIPT"].includes(child.tagName)))
      out += text(child) + " ";
  }
  return out;
}
return text(document.body);
"""
#: the columns of a named data source of the page, as the browser holds them
COLUMN_JS = "const s = Bokeh.documents[0].get_model_by_name(arguments[0]); return Array.from(s.get_column(arguments[1]));"
STATUS = re.compile(r"commit #(\d+) at [^·]*·\s*(bootstrap|cycle \d+)\s*·\s*phase (\S+)")


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1300,1400"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT_S)
    driver.set_script_timeout(PAGE_TIMEOUT_S)
    try:
        yield driver
    finally:
        driver.quit()


def wait_until(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """The first truthy value of ``condition()``, polled every 0.1 s; fails after ``timeout_s`` (a guard)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.1)


def shown_status(driver: Any) -> tuple[int, str, str] | None:
    """(commit seq, cycle, phase) as the page's status line shows them, or None before it shows one."""
    found = STATUS.search(driver.execute_script(PAGE_TEXT_JS))
    return (int(found.group(1)), found.group(2), found.group(3)) if found else None


def wait_for_status(driver: Any, seq: int, cycle: str, phase: str) -> None:
    wait_until(lambda: shown_status(driver) == (seq, cycle, phase), PAGE_TIMEOUT_S,
               f"the page to show commit #{seq}, {cycle}, phase {phase} (it shows {shown_status(driver)})")


def _write_campaign(folder: Path) -> Path:
    """The tiny water campaign, one cycle, with an evaluation set and models that carry a calibrated error model
    (so every panel has data)."""
    yaml = write_evaluation_campaign(folder, n_frames=4, cycles=1, max_expensive=24,
                                     bootstrap="{n_samples: 14, n_expensive: 12, amplitude_A: 0.05}")
    text = yaml.read_text().replace("final_refit: false, max_epochs: 4,",
                                    "final_refit: false, validation_fraction: 0.5, max_epochs: 4,")
    assert "validation_fraction: 0.5" in text
    yaml.write_text(text)
    return yaml


def test_the_page_follows_a_live_campaign_and_updates_after_a_commit(tmp_path, browser):
    yaml, run_dir = _write_campaign(tmp_path), tmp_path / "run"
    with open(tmp_path / "campaign.out", "w") as out:
        campaign = subprocess.Popen([sys.executable, "-m", "alloop.cli", "run", str(yaml), "--dir", str(run_dir),
                                     "--no-progress"], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: is_store(run_dir) or campaign.poll() is not None, CAMPAIGN_TIMEOUT_S, "the campaign's store")
        with running_dashboard(run_dir, "--interval", "0.3") as dashboard:
            browser.get(dashboard.url)
            first = wait_until(lambda: shown_status(browser), PAGE_TIMEOUT_S, "the page's status line")
            assert campaign.wait(timeout=CAMPAIGN_TIMEOUT_S) == 0, (tmp_path / "campaign.out").read_text()
            with CampaignStore.open(store_path(run_dir), "r") as store:
                final, snapshot = store.record, read_snapshot(store)
            assert first[0] <= final["seq"]
            wait_for_status(browser, final["seq"], "cycle 0", "finished")  # the campaign followed to its end
            assert "finished: 1 cycles done" in browser.execute_script(PAGE_TEXT_JS)
            _check_panels(browser, snapshot)
            with CampaignStore.open(store_path(run_dir), "a") as store:  # a new commit, as the loop's next cycle
                tables.append(store, tables.PROGRESS, cycle=[1], phase=["explored"], time=[time.time()])
                store.commit(cycle=1, phase="explored")
            wait_for_status(browser, final["seq"] + 1, "cycle 1", "explored")
            assert browser.execute_script(COLUMN_JS, "timeline", "phase")[-1] == "explored"
            browser.save_screenshot(str(tmp_path / "dashboard.png"))
        assert dashboard.returncode == 143, dashboard.stderr
    finally:
        if campaign.poll() is None:
            campaign.kill()
            campaign.wait()


def _check_panels(driver: Any, snapshot: dict[str, Any]) -> None:
    """The browser holds every panel's data as read from the store: one learning-curve point per model, coverage
    and predicted errors per model, labels per cycle and fidelity, one timeline bar per finished phase."""
    for panel, column in (("learning", "cpu_s"), ("learning", "eval_force_mae_eV_per_A"),
                          ("coverage", "covered_fraction"), ("predicted", "eval_predicted_eV_per_A"),
                          ("flags", "flag_rate"), ("labels", "ok"), ("timeline", "seconds")):
        expected = snapshot[panel][column]
        assert expected, f"{panel}.{column} is empty in the store"
        assert driver.execute_script(COLUMN_JS, panel, column) == pytest.approx(expected), f"{panel}.{column}"
    assert len(snapshot["learning"]["cpu_s"]) == 2  # the bootstrap's model and cycle 0's
