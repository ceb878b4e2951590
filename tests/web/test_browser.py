"""The web page in a real browser: Debian's chromium, headless, driven by
selenium through chromium-driver, against the real ``twistd tekcos --web``.

Needs /usr/bin/chromium and /usr/bin/chromedriver (packages chromium and
chromium-driver).  Skipped where they are missing, except under
TEKCOS_REQUIRE_BROWSER=1 (CI), where that is a failure.  A screenshot of the
page in use is written to $TEKCOS_ARTIFACTS (default build/artifacts/ in the
checkout).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time

import pytest

from tests.federation.test_nodes import redis  # noqa: F401 (a fixture)
from tests.twistd import REPO, User, free_port, wait_until

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = os.environ.get("TEKCOS_ARTIFACTS", os.path.join(REPO, "build", "artifacts"))


def _require_browser():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if missing:
        reason = f"missing {', '.join(missing)}"
        if os.environ.get("TEKCOS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"TEKCOS_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)


def chromium(profile: str, width: int = 1280, height: int = 800):
    """A headless chromium session driven through chromium-driver, its
    profile in ``profile``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                 f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture
def browser():
    """A factory of headless chromium sessions, all closed afterwards."""
    _require_browser()
    drivers, profiles = [], []

    def open_browser(width=1280, height=800):
        profile = tempfile.mkdtemp(prefix="tekcos-chromium-")
        profiles.append(profile)
        driver = chromium(profile, width, height)
        drivers.append(driver)
        return driver

    yield open_browser
    for driver in drivers:
        driver.quit()
    for profile in profiles:
        shutil.rmtree(profile, ignore_errors=True)


def join(driver, url: str, nick: str) -> None:
    from selenium.webdriver.common.by import By
    driver.get(url)
    wait_until(lambda: "connected" == driver.find_element(By.ID, "status").text,
               what=f"{nick}'s page to connect")
    field = driver.find_element(By.ID, "nick")
    field.send_keys(nick)
    driver.find_element(By.CSS_SELECTOR, "#nick-form button").click()
    wait_until(lambda: driver.find_element(By.ID, "line-form").is_displayed(),
               what=f"{nick} to be in")
    assert not driver.find_element(By.ID, "nick-form").is_displayed()


def say(driver, text: str) -> None:
    from selenium.webdriver.common.by import By
    line = driver.find_element(By.ID, "line")
    line.send_keys(text)
    driver.find_element(By.CSS_SELECTOR, "#line-form button[type=submit]").click()


def texts(driver, selector: str) -> list[str]:
    """The text of every element matching ``selector``, read in one go (the
    page redraws its lists while we look)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]), e => e.textContent)",
        selector)


def downloads_into(driver, directory):
    """Let the page download without asking, into ``directory`` (made)."""
    directory.mkdir()
    driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(directory)})
    return directory


def drop_file(driver, target: str, content: str, name: str) -> None:
    """Drop a file made in the page (``content``, ``name``) onto the element
    the JavaScript expression ``target`` picks, as a drag from the desktop."""
    driver.execute_script(
        f"const target = {target};"
        "const dt = new DataTransfer();"
        "dt.items.add(new File([arguments[0]], arguments[1]));"
        "target.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true,"
        " cancelable: true}));", content, name)


def log_lines(driver) -> list[str]:
    return texts(driver, "#log .text")


def shows(driver, fragment: str) -> bool:
    return any(fragment in line for line in log_lines(driver))


def test_two_browsers_and_a_telnet_user_chat_and_a_dropped_file_lands(start, browser, tmp_path):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    web = free_port()
    server = start("--web", str(web))
    url = f"http://127.0.0.1:{web}/"
    alice, bob = browser(), browser(width=420, height=820)     # bob is on a phone
    join(alice, url, "alice")
    join(bob, url, "bob")
    carol = User(server.port, "carol")                         # the telnet side
    say(alice, "hello from the browser")
    carol.expect(rb"\[\d\d:\d\d\] <alice> hello from the browser\r\n")
    wait_until(lambda: shows(bob, "<alice> hello from the browser"), what="bob to see alice")
    carol.send("hi browsers, carol on telnet \u00e9\r\n".encode())
    for driver in (alice, bob):
        wait_until(lambda: shows(driver, "<carol> hi browsers, carol on telnet \u00e9"),
                   what="the browsers to see carol")
    # Everyone is listed as a member of lobby.
    wait_until(lambda: sorted(texts(alice, "#members li > span")) == ["alice", "bob", "carol"],
               what="the member list")
    # User text is text, never HTML.
    say(bob, "<img src=x onerror=alert(1)> <b>bold?</b>")
    wait_until(lambda: shows(alice, "<bob> <img src=x onerror=alert(1)> <b>bold?</b>"),
               what="the markup shown as text")
    assert alice.find_elements(By.CSS_SELECTOR, "#log img, #log b") == []
    with pytest.raises(NoAlertPresentException):
        alice.switch_to.alert.text
    # /commands work as typed.
    say(bob, "/me waves")
    wait_until(lambda: shows(alice, "* bob waves"), what="/me")
    carol.expect(rb"\* bob waves")
    # A file picked in the page: uploaded, stored, verified and announced.
    data = os.urandom(3_000_000)
    picked = tmp_path / "holiday photos.zip"
    picked.write_bytes(data)
    alice.find_element(By.ID, "file").send_keys(str(picked))
    wait_until(lambda: "stored as holiday photos.zip" in
               alice.find_element(By.ID, "uploads").text, what="the upload to finish")
    stored = os.path.join(server.downloads, "holiday photos.zip")
    with open(stored, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == hashlib.sha256(data).hexdigest()
    carol.expect(rb"-- alice@127\.0\.0\.1 pushed holiday photos\.zip \(3\.0 MB\)")
    # A file dropped onto the page goes the same way.
    drop_file(bob, "document", "dropped on the page", "notes.txt")
    wait_until(lambda: "stored as notes.txt" in bob.find_element(By.ID, "uploads").text,
               what="the dropped file to be stored")
    with open(os.path.join(server.downloads, "notes.txt"), "rb") as f:
        assert f.read() == b"dropped on the page"
    carol.expect(rb"-- bob@127\.0\.0\.1 pushed notes\.txt \(19 bytes\)")
    carol.send(b"/files\r\n")
    carol.expect(rb"notes\.txt \(19 bytes\) from bob@127\.0\.0\.1")
    # A room from the list.
    carol.send(b"/join games\r\n")
    wait_until(lambda: any(t.startswith("games") for t in texts(bob, "#rooms li")),
               what="the new room in the list")
    os.makedirs(ARTIFACTS, exist_ok=True)
    alice.save_screenshot(os.path.join(ARTIFACTS, "web-chat.png"))
    bob.save_screenshot(os.path.join(ARTIFACTS, "web-chat-phone.png"))
    assert os.path.getsize(os.path.join(ARTIFACTS, "web-chat.png")) > 10_000
    # Nothing received is served back unless the operator says so.
    import urllib.error
    import urllib.request
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{url}files/notes.txt", timeout=10)
    assert refused.value.code == 404


def push_for_bob(tmp_path, port: int, name: str, size: int):
    """``tekcos push`` of ``size`` random bytes as ``name`` for bob, from
    alice: (the data, the running push)."""
    import subprocess
    import sys
    data = os.urandom(size)
    src = tmp_path / name
    src.write_bytes(data)
    push = subprocess.Popen([sys.executable, "-m", "tekcos.cli", "push", str(src), "--to",
                             f"127.0.0.1:{port}", "--for", "bob", "--as", "alice", "-q"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return data, push


def accept_offer(driver, push, said: str) -> None:
    """The offer (its line says ``said``) accepted with its button; the push ends well."""
    from selenium.webdriver.common.by import By
    wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "#log button.accept"),
               what="the offer with its Accept button")
    assert shows(driver, said)
    driver.find_element(By.CSS_SELECTOR, "#log button.accept").click()
    assert push.wait(timeout=60) == 0, push.stderr.read()


def download(driver, saved, name: str, data: bytes):
    """The ready line's Download link, clicked; the file as it landed in ``saved``."""
    from selenium.webdriver.common.by import By
    wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "#log a.download"),
               what="the Download link")
    driver.find_element(By.CSS_SELECTOR, "#log a.download").click()
    target = saved / name
    wait_until(lambda: target.exists() and target.stat().st_size == len(data), timeout=30,
               what="the download to land")
    return target


def test_a_file_pushed_for_a_browser_user_is_accepted_and_downloaded(start, browser, tmp_path):
    from selenium.webdriver.common.by import By
    web = free_port()
    server = start("--web", str(web))
    bob = browser()
    join(bob, f"http://127.0.0.1:{web}/", "bob")
    saved = downloads_into(bob, tmp_path / "saved")
    data, push = push_for_bob(tmp_path, server.port, "slides.pdf", 2_000_000)
    accept_offer(bob, push, "alice offers you slides.pdf (2.0 MB)")
    wait_until(lambda: bob.find_elements(By.CSS_SELECTOR, "#log a.download"),
               what="the Download link")
    os.makedirs(ARTIFACTS, exist_ok=True)
    bob.save_screenshot(os.path.join(ARTIFACTS, "web-received.png"))
    target = download(bob, saved, "slides.pdf", data)
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(data).digest()
    # The Files list keeps it, for later, with its size, sender and hash.
    kept = wait_until(lambda: bob.find_elements(By.CSS_SELECTOR, "#files a"),
                      what="the file in the Files list")
    assert kept[0].text == "slides.pdf" and "2.0 MB from alice" in kept[0].find_element(
        By.XPATH, "..").text
    assert kept[0].get_attribute("title") == "SHA-256 " + hashlib.sha256(data).hexdigest()
    assert kept[0].get_attribute("href").endswith(
        bob.find_element(By.CSS_SELECTOR, "#log a.download").get_attribute("href")[-20:])


def test_a_file_kept_on_another_node_is_downloaded_from_the_page_of_ones_own(
        start, browser, redis, tmp_path):
    from selenium.webdriver.common.by import By
    web = free_port()
    a = start("--redis", redis.url, "--node-name", "lab-a", "--node-address", "127.0.0.1")
    start("--redis", redis.url, "--node-name", "lab-b", "--node-address", "127.0.0.1",
          "--web", str(web))
    bob = browser()
    join(bob, f"http://127.0.0.1:{web}/", "bob")
    saved = downloads_into(bob, tmp_path / "saved")
    alice = User(a.port, "alice")
    alice.send(b"/whois bob\r\n")             # bob, on lab-b, is known on lab-a
    alice.expect(rb"bob.*lab-b")
    data, push = push_for_bob(tmp_path, a.port, "minutes.pdf", 1_500_000)
    accept_offer(bob, push, "kept on node lab-a")
    # lab-b brings the file over; the page's link is lab-b's own.
    target = download(bob, saved, "minutes.pdf", data)
    assert shows(bob, "bringing it to this server")
    assert target.read_bytes() == data
    kept = wait_until(lambda: bob.find_elements(By.CSS_SELECTOR, "#files a"),
                      what="the file in the Files list")
    assert kept[0].text == "minutes.pdf"
    assert kept[0].get_attribute("title") == "SHA-256 " + hashlib.sha256(data).hexdigest()
    assert kept[0].get_attribute("href").startswith(f"http://127.0.0.1:{web}/get/")


def test_a_file_dropped_on_a_members_name_goes_to_that_person(start, browser, tmp_path):
    from selenium.webdriver.common.by import By
    web = free_port()
    server = start("--web", str(web))
    url = f"http://127.0.0.1:{web}/"
    alice, bob = browser(), browser()
    join(alice, url, "alice")
    join(bob, url, "bob")
    saved = downloads_into(bob, tmp_path / "saved")
    wait_until(lambda: "bob" in texts(alice, "#members li > span"), what="bob in alice's list")
    drop_file(alice, "Array.from(document.querySelectorAll('#members li'))"
                     ".find(li => li.firstChild.textContent === 'bob')", "for bob only",
              "secret.txt")
    wait_until(lambda: "waiting for bob to accept" in alice.find_element(By.ID, "uploads").text,
               what="alice's upload to wait for bob")
    wait_until(lambda: bob.find_elements(By.CSS_SELECTOR, "#log button.accept"),
               what="bob's Accept button")
    assert shows(bob, "alice offers you secret.txt (12 bytes)")
    bob.find_element(By.CSS_SELECTOR, "#log button.accept").click()
    wait_until(lambda: "kept for bob" in alice.find_element(By.ID, "uploads").text,
               what="the upload to be kept for bob")
    wait_until(lambda: bob.find_elements(By.CSS_SELECTOR, "#log a.download"),
               what="bob's Download link")
    bob.find_element(By.CSS_SELECTOR, "#log a.download").click()
    target = saved / "secret.txt"
    wait_until(lambda: target.exists() and target.read_bytes() == b"for bob only", timeout=30,
               what="bob's download")
    # Not announced, not among the server's files.
    assert not shows(alice, "pushed secret.txt")
    assert not os.path.exists(os.path.join(server.downloads, "secret.txt"))
    # The same with the "Send to…" button beside bob's name.
    picked = tmp_path / "second.txt"
    picked.write_bytes(b"picked for bob")
    button = [b for b in alice.find_elements(By.CSS_SELECTOR, "#members li button.send-to")
              if b.get_attribute("title") == "send a file to bob, who is asked first"][0]
    button.click()
    alice.find_element(By.ID, "send-to").send_keys(str(picked))
    wait_until(lambda: len(bob.find_elements(By.CSS_SELECTOR, "#log button.accept")) == 2,
               what="the second offer")
    bob.find_elements(By.CSS_SELECTOR, "#log button.accept")[1].click()
    wait_until(lambda: len(bob.find_elements(By.CSS_SELECTOR, "#log a.download")) == 2,
               what="the second Download link")
    alice.save_screenshot(os.path.join(ARTIFACTS, "web-send-to.png"))


def test_the_page_reconnects_by_itself_after_a_restart_and_rejoins_its_room(start, browser):
    from selenium.webdriver.common.by import By
    web = free_port()
    server = start("--web", str(web))
    page = browser()
    join(page, f"http://127.0.0.1:{web}/", "webby")
    say(page, "/join dev")
    wait_until(lambda: page.find_element(By.ID, "where").text == "webby in dev",
               what="webby in dev")
    server.stop()
    wait_until(lambda: "connecting again" in page.find_element(By.ID, "status").text,
               what="the page to say it connects again")
    again = start("--web", str(web), "--oper-password", "pw")
    wait_until(lambda: page.find_element(By.ID, "status").text == "connected"
               and page.find_element(By.ID, "line-form").is_displayed()
               and page.find_element(By.ID, "where").text == "webby in dev", timeout=60,
               what="webby back in dev after the restart")
    friend = User(again.port, "friend")
    friend.send(b"/join dev\n")
    friend.expect(rb"You are in dev")
    say(page, "back again")
    friend.expect(rb"<webby> back again")
    assert page.find_element(By.ID, "status").text == "connected"
    # Disconnected by an operator: it does not come back by itself.
    friend.send(b"/oper pw\n/kill webby enough\n")
    friend.expect(rb"webby has quit")
    wait_until(lambda: "reload the page" in page.find_element(By.ID, "status").text,
               what="the page to stay away")
    time.sleep(2.5)    # longer than the first retry would wait
    friend.send(b"/who\n")
    who = friend.expect(rb"\*\*\* dev \(\d+\): [^\r]*\r\n").rsplit(b"\r\n", 2)[-2]
    assert who.startswith(b"*** dev (1): ") and b"webby" not in who


def test_after_a_restart_the_page_is_replayed_only_the_lines_it_missed(start, browser,
                                                                       tmp_path):
    from selenium.webdriver.common.by import By
    web, state = free_port(), str(tmp_path / "state")
    server = start("--web", str(web), "--state-dir", state)
    page = browser()
    join(page, f"http://127.0.0.1:{web}/", "webby")
    say(page, "/join dev")
    wait_until(lambda: page.find_element(By.ID, "where").text == "webby in dev",
               what="webby in dev")
    tom = User(server.port, "tom")
    tom.send(b"/join dev\nbefore one\nbefore two\n")
    wait_until(lambda: sum("before two" in line for line in visible_lines(page)) == 1,
               what="the page to show tom's lines")
    server.stop()
    # Its next try is seconds away: tom speaks on the new server meanwhile.
    wait_until(lambda: "again in 4 s" in page.find_element(By.ID, "status").text,
               timeout=30, what="the page to wait 4 s before its next try")
    again = start("--web", str(web), "--state-dir", state)
    tom = User(again.port, "tom")
    tom.send(b"/join dev\nwhile you were away\n")
    tom.expect(rb"<tom> while you were away")
    wait_until(lambda: page.find_element(By.ID, "line-form").is_displayed()
               and page.find_element(By.ID, "where").text == "webby in dev"
               and any("while you were away" in line for line in visible_lines(page)),
               timeout=60, what="webby back in dev with the line it missed")
    lines = visible_lines(page)
    # Each line once: what the page had is not replayed again, what it
    # missed is.
    for said in ("before one", "before two", "while you were away"):
        assert sum(said in line for line in lines) == 1, (said, lines)
    say(page, "caught up")
    tom.expect(rb"<webby> caught up")


def click(driver, selector: str) -> None:
    """A real click on the first element matching ``selector``, found again
    if the page redrew it between finding and clicking."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    for attempt in range(5):
        try:
            driver.find_element(By.CSS_SELECTOR, selector).click()
            return
        except StaleElementReferenceException:
            time.sleep(0.05)
    raise AssertionError(f"{selector} kept being redrawn")


def visible_lines(driver) -> list[str]:
    """The lines of the room view in front."""
    return texts(driver, "#log .view:not([hidden]) .text")


def test_rooms_are_views_with_unread_and_mention_badges(start, browser):
    from selenium.webdriver.common.by import By
    web = free_port()
    server = start("--web", str(web))
    url = f"http://127.0.0.1:{web}/"
    alice, bob = browser(), browser()
    join(alice, url, "alice")
    join(bob, url, "bob")
    carol = User(server.port, "carol")                      # telnet, in both rooms
    say(alice, "/join dev")
    wait_until(lambda: texts(alice, "#joined li .name") == ["lobby", "dev"]
               and texts(alice, "#joined li.current .name") == ["dev"], what="alice in two rooms")
    carol.send(b"/join dev\r\n")
    carol.expect(rb"You are in dev")
    carol.send(b"deploy at five\r\n")
    wait_until(lambda: any("<carol> deploy at five" in t for t in visible_lines(alice)),
               what="dev's line in alice's dev view")
    # bob is only in the lobby: dev's line never reaches him.
    say(bob, "alice, lunch?")
    carol.expect(rb"\[\d\d:\d\d\] #lobby <bob> alice, lunch\?\r\n")   # tagged for telnet
    say(bob, "anyone?")
    wait_until(lambda: texts(alice, "#joined li .badge") == ["@1"], what="the mention badge")
    assert "2 unread" in alice.execute_script(
        "return document.querySelector('#joined li').title")
    assert not any("lunch" in t for t in visible_lines(alice))
    assert not any("deploy" in t for t in log_lines(bob))
    os.makedirs(ARTIFACTS, exist_ok=True)
    alice.save_screenshot(os.path.join(ARTIFACTS, "web-rooms.png"))
    # Opening the lobby shows its lines, clears the badge and talks there.
    click(alice, "#joined li")
    wait_until(lambda: any("<bob> alice, lunch?" in t for t in visible_lines(alice))
               and texts(alice, "#joined li .badge") == [], what="the lobby view")
    assert not any("deploy" in t for t in visible_lines(alice))
    wait_until(lambda: alice.find_element(By.ID, "where").text == "alice in lobby",
               what="the server to switch alice to the lobby")
    say(alice, "on my way")
    wait_until(lambda: any("<alice> on my way" in t for t in visible_lines(bob)),
               what="bob to hear alice")
    carol.expect(rb"#lobby <alice> on my way\r\n")
    # /part from the page: dev leaves the sidebar and becomes an other room.
    say(alice, "/part dev")
    wait_until(lambda: texts(alice, "#joined li .name") == ["lobby"]
               and "dev" in texts(alice, "#rooms li .name"), what="dev to be an other room")


def test_phone_size_has_no_sideways_scroll_and_dark_mode_is_dark(start, browser):
    import re

    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    web = free_port()
    server = start("--web", str(web))
    phone = browser(width=500, height=800)
    # Headless chromium's window is at least 500 px wide: a phone is emulated.
    phone.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 360, "height": 740, "deviceScaleFactor": 2, "mobile": True})
    join(phone, f"http://127.0.0.1:{web}/", "pocket")
    carol = User(server.port, "carol")
    carol.send(("a long line without spaces " + "x" * 300 + "\r\n").encode())
    wait_until(lambda: any("<carol> a long line" in t for t in visible_lines(phone)),
               what="carol's line on the phone")
    say(phone, "/help")
    wait_until(lambda: any("/join ROOM" in t for t in texts(phone, "#log .listing li")),
               what="the help as a list")
    assert not any("/charset" in t for t in texts(phone, "#log .listing li"))
    width = phone.execute_script("return window.innerWidth")
    assert width == 360
    assert phone.execute_script("return document.scrollingElement.scrollWidth") <= width
    assert not phone.find_element(By.ID, "rooms-panel").is_displayed()
    assert not phone.find_element(By.ID, "neighbours-panel").is_displayed()   # not an operator
    phone.find_element(By.ID, "menu").click()
    wait_until(lambda: phone.find_element(By.ID, "rooms-panel").is_displayed(),
               what="the rooms menu")
    assert phone.execute_script("return document.scrollingElement.scrollWidth") <= width
    os.makedirs(ARTIFACTS, exist_ok=True)
    phone.save_screenshot(os.path.join(ARTIFACTS, "web-phone-menu.png"))
    # Share: the QR code of the page's LAN address, drawn by the server.
    phone.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    phone.find_element(By.ID, "share-open").click()
    wait_until(lambda: phone.execute_script(
        "const img = document.getElementById('share-code');"
        "return img.complete && img.naturalWidth > 100"), what="the QR code")
    shared = phone.find_element(By.ID, "share-url").text
    assert re.fullmatch(rf"http://[\d.]+:{web}/", shared) and "127.0.0.1" not in shared
    phone.save_screenshot(os.path.join(ARTIFACTS, "web-share.png"))
    phone.find_element(By.CSS_SELECTOR, "#share button").click()
    assert not phone.find_element(By.ID, "share").is_displayed()
    phone.execute_cdp_cmd("Emulation.setEmulatedMedia", {
        "features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    phone.find_element(By.ID, "menu").click()
    background = phone.execute_script(
        "return getComputedStyle(document.body).backgroundColor")
    red, green, blue = (int(v) for v in background[background.index("(") + 1:-1].split(",")[:3])
    assert red + green + blue < 150, background
    phone.save_screenshot(os.path.join(ARTIFACTS, "web-phone-dark.png"))


def test_a_page_whose_connection_is_cut_continues_its_session(start, browser):
    """The server's side of the page's connection is destroyed (``ss -K``,
    as a Wi-Fi drop would leave it): the page comes back by itself with its
    token, nobody sees it leave, and it gets what was said meanwhile."""
    import subprocess
    from selenium.webdriver.common.by import By
    if os.geteuid() != 0 or shutil.which("ss") is None:
        if os.environ.get("TEKCOS_REQUIRE_BROWSER") == "1":
            pytest.fail("cutting a connection needs root and ss (iproute2)")
        pytest.skip("cutting a connection needs root and ss (iproute2)")
    web = free_port()
    server = start("--web", str(web))
    page = browser()
    join(page, f"http://127.0.0.1:{web}/", "webby")
    say(page, "/join dev")
    wait_until(lambda: page.find_element(By.ID, "where").text == "webby in dev",
               what="webby in dev")
    friend = User(server.port, "friend")
    friend.send(b"/join dev\n")
    friend.expect(rb"You are in dev")
    cut = subprocess.run(["ss", "-K", "state", "established", f"( sport = :{web} )"],
                         capture_output=True, text=True)
    assert cut.returncode == 0, cut.stderr
    wait_until(lambda: "disconnected" in page.find_element(By.ID, "status").text
               or "catching up" in page.find_element(By.ID, "status").text, timeout=10,
               what="the page to notice")
    friend.send(b"said while you were cut off\n")
    wait_until(lambda: any("<friend> said while you were cut off" in t
                           for t in visible_lines(page))
               and page.find_element(By.ID, "status").text == "connected", timeout=30,
               what="the page back, with what it missed")
    say(page, "never left")
    seen = friend.expect(rb"<webby> never left\r\n")
    assert b"webby has quit" not in seen and b"webby joined" not in seen
    assert texts(page, "#joined li .name") == ["lobby", "dev"]


# The WCAG 2 contrast ratio of every visible piece of text against what is
# drawn behind it: the text colour with its alpha and every ancestor's
# opacity, over the first opaque background up the tree.
CONTRAST = """
const rgba = (text) => {
  const v = text.slice(text.indexOf("(") + 1, -1).split(",").map(Number);
  return [v[0], v[1], v[2], v.length > 3 ? v[3] : 1];
};
const lum = ([r, g, b]) => {
  const c = [r, g, b].map((x) => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; });
  return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
};
const failures = [];
let checked = 0;
for (const el of document.querySelectorAll("body *")) {
  const own = Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
  if (!own || !el.getClientRects().length || el.closest("[hidden]")) continue;
  const style = getComputedStyle(el);
  if (style.visibility === "hidden" || el.closest("dialog:not([open])")) continue;
  let alpha = rgba(style.color)[3];
  let bg = null;
  for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
    const s = getComputedStyle(n);
    alpha *= Number(s.opacity);
    const b = rgba(s.backgroundColor);
    if (!bg && b[3] > 0.5) bg = b;
  }
  bg = bg || [255, 255, 255, 1];
  const fg = rgba(style.color).slice(0, 3).map((c, i) => c * alpha + bg[i] * (1 - alpha));
  const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
  const ratio = (hi + 0.05) / (lo + 0.05);
  const large = parseFloat(style.fontSize) >= 24 ||
                (parseFloat(style.fontSize) >= 18.66 && Number(style.fontWeight) >= 700);
  checked += 1;
  if (ratio < (large ? 3 : 4.5)) {
    failures.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className}: ${ratio.toFixed(2)} "${el.textContent.trim().slice(0, 30)}"`);
  }
}
return [checked, failures];
"""


def test_text_is_readable_in_light_and_dark_and_the_page_works_from_the_keyboard(start,
                                                                                 browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    web = free_port()
    server = start("--web", str(web))
    early = User(server.port, "early")
    early.send(b"a line said before keys came, replayed as history\r\n")
    early.expect(rb"<early> a line said before")
    page = browser()
    page.get(f"http://127.0.0.1:{web}/")
    wait_until(lambda: page.find_element(By.ID, "status").text == "connected",
               what="the page to connect")
    # Keyboard only: Tab reaches the nick field, Enter joins.
    focused = lambda: page.switch_to.active_element.get_attribute("id")   # noqa: E731
    for _ in range(12):
        if focused() == "nick":
            break
        page.switch_to.active_element.send_keys(Keys.TAB)
    assert focused() == "nick"
    page.switch_to.active_element.send_keys("keys", Keys.ENTER)
    wait_until(lambda: page.find_element(By.ID, "line-form").is_displayed(), what="keys in")
    tom = User(server.port, "tom")
    tom.send(b"keys: a mention, and a line of history to read\r\n")
    say(page, "/join dev")
    wait_until(lambda: page.find_element(By.ID, "where").text == "keys in dev",
               what="keys in dev")
    line = page.find_element(By.ID, "line")
    line.click()
    line.send_keys("typed and sent with Enter", Keys.ENTER)
    tom.send(b"/join dev\r\n")
    tom.expect(rb"You are in dev")
    say(page, "after tom came")
    tom.expect(rb"<keys> after tom came")
    # Esc closes a dialog.
    page.execute_script("document.getElementById('share').showModal()")
    page.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait_until(lambda: not page.find_element(By.ID, "share").is_displayed(),
               what="Esc to close the dialog")
    say(page, "/help")
    say(page, "/switch lobby")
    wait_until(lambda: page.find_element(By.ID, "where").text == "keys in lobby",
               what="keys back in lobby")
    for scheme in ("light", "dark"):
        page.execute_cdp_cmd("Emulation.setEmulatedMedia", {
            "features": [{"name": "prefers-color-scheme", "value": scheme}]})
        checked, failures = page.execute_script(CONTRAST)
        assert checked > 20 and failures == [], (scheme, failures)
    assert any("replayed as history" in t for t in texts(page, "#log .line.history .text"))


def test_the_neighbours_table_shows_each_devices_ipv6_addresses_under_it(lab, tmp_path):
    """A real scan of a namespace LAN (tests/scan/test_ipv6.py's), shown by
    the page in a chromium that runs in the scanner's namespace too (the
    only place the server can be reached)."""
    import ipaddress
    import json
    import subprocess
    import sys

    from tests.scan.test_ipv6 import HOSTS, LAN6, link_local
    from tests.twistd import serve_in
    _require_browser()
    lan6 = LAN6(lab)
    server = serve_in(lab, lan6.scanner, tmp_path / "dl", args=(
        "--web", "8080", "--scan-access", "everyone", "--scan-cooldown", "0",
        "--scan-iface", "eth1"))

    def page(nick: str, hosts: int) -> dict:
        shown = lab.popen(lan6.scanner, [sys.executable, "-m", "tests.web.ns_page",
                                         "http://127.0.0.1:8080/", nick, str(hosts)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        out, err = shown.communicate(timeout=120)
        assert shown.returncode == 0, err[-3000:]
        return json.loads(out.splitlines()[-1])
    try:
        shown = page("ops", len(HOSTS))
        rows = {row["mac"]: row for row in shown["rows"]}
        for name in ("ll", "eui", "opaque"):
            ip, mac, extra, _ = HOSTS[name]
            assert rows[mac]["ip"] == ip
            shown_v6 = {ipaddress.IPv6Address(a) for a in rows[mac]["v6"]}
            assert ipaddress.IPv6Address(link_local(mac)) in shown_v6, name
            for address in extra:
                assert ipaddress.IPv6Address(address) in shown_v6, name
        assert rows[HOSTS["silent"][1]]["v6"] == []
        assert shown["info"].startswith(f"{len(rows)} hosts on 10.81.0.0/24 via eth1")
        assert "with IPv6" in shown["info"]
        # The link loses IPv4: the page shows what the IPv6 look found.
        lab.exec(lan6.scanner, "ip", "route", "del", "default")
        lab.exec(lan6.scanner, "ip", "-4", "addr", "flush", "dev", "eth1")
        shown = page("ops2", 4)         # (ops's nick is kept a while for its return)
        assert shown["info"].startswith(f"{len(shown['rows'])} hosts on eth1 (no IPv4 address "
                                        "there: IPv6 only)")
        assert all(row["ip"] == "-" for row in shown["rows"])
        assert ipaddress.IPv6Address(link_local(HOSTS["eui"][1])) in {
            ipaddress.IPv6Address(a) for row in shown["rows"] for a in row["v6"]}
    finally:
        server.terminate()
        server.wait(timeout=20)
