"""Run inside a network namespace by tests/web/test_neighbours_page.py:
the page at URL in headless chromium (started here, so that it reaches a
server listening only in this namespace), joined as NICK, a scan asked for
with the page's Scan button; prints the Neighbours table as JSON:
``{"info": the line above it, "rows": [{"ip", "v6": [...], "mac"}]}``."""
from __future__ import annotations

import json
import shutil
import sys
import tempfile

from tests.twistd import wait_until
from tests.web.test_browser import chromium, join


def table(driver) -> list[dict]:
    return driver.execute_script("""
        return Array.from(document.querySelectorAll('#neighbours tbody tr'), (row) => ({
          ip: row.cells[0].firstChild ? row.cells[0].firstChild.textContent : '',
          v6: Array.from(row.cells[0].querySelectorAll('.v6'), (d) => d.textContent),
          mac: row.cells[1].textContent}));""")


def main(url: str, nick: str, hosts: int) -> None:
    from selenium.webdriver.common.by import By
    profile = tempfile.mkdtemp(prefix="tekcos-chromium-")
    driver = chromium(profile)
    try:
        join(driver, url, nick)
        wait_until(lambda: driver.find_element(By.ID, "neighbours-panel").is_displayed(),
                   what="the Neighbours panel")
        wait_until(lambda: driver.find_element(By.ID, "scan-info").text, what="the last scan")
        before = driver.find_element(By.ID, "scan-info").text
        driver.find_element(By.ID, "scan").click()
        # A new scan's line (its time differs), then its rows.
        wait_until(lambda: driver.find_element(By.ID, "scan-info").text != before
                   and len(table(driver)) >= hosts, timeout=30, what="the scan's rows")
        print(json.dumps({"info": driver.find_element(By.ID, "scan-info").text,
                          "rows": table(driver)}))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
