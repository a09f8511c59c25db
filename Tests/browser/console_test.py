#!/usr/bin/env python3
"""Drives the Exar Console in headless Chromium against a running exar-db.

    python3 Tests/browser/console_test.py --url http://127.0.0.1:38581 --port 38580 \
        [--screenshots docs/images]

The console's base URL and the protocol port also come from EXAR_HTTP_URL and EXAR_PORT
(credentials, when the server has them, from EXAR_USERNAME and EXAR_PASSWORD). The test
drops and refills the collection `browser-test` (--collection). It needs Debian's chromium
and chromium-driver and the selenium package: scripts/setup-browser.sh installs them.
Exits 0 after printing "browser test: N checks passed", 1 with the failed check otherwise.
"""

import argparse
import base64
import csv
import io
import json
import os
import socket
import sys
import time
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WIDTH, HEIGHT = 1280, 800
BULK = 30


class CheckFailed(Exception):
    pass


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("EXAR_HTTP_URL", "http://127.0.0.1:38581"),
                        help="the console's base URL (EXAR_HTTP_URL)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("EXAR_PORT", "38580")),
                        help="the protocol port (EXAR_PORT)")
    parser.add_argument("--tcp-host", default=None, help="the protocol host (default: the URL's host)")
    parser.add_argument("--collection", default="browser-test")
    parser.add_argument("--screenshots", default=None, help="folder for console-<view>.png at 1280x800")
    parser.add_argument("--headed", action="store_true", help="show the browser window")
    return parser.parse_args()


# ---------------------------------------------------------------- the server, without the browser

class Server:
    """The HTTP API through urllib and the protocol port through a socket."""

    def __init__(self, url, tcp_host, port):
        self.url = url.rstrip("/")
        self.tcp_host = tcp_host
        self.port = port
        self.username = os.environ.get("EXAR_USERNAME")
        self.password = os.environ.get("EXAR_PASSWORD")

    def request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if method != "GET":
            request.add_header("Content-Type", "application/json")
        if self.username and self.password:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read().decode()

    def drop(self, name):
        self.request("DELETE", f"/api/v1/collections/{urllib.parse.quote(name, safe='')}")

    def tcp(self, collection):
        return ProtocolConnection(self.tcp_host, self.port, collection, self.username, self.password)


class ProtocolConnection:
    def __init__(self, host, port, collection, username=None, password=None):
        self.socket = socket.create_connection((host, port), timeout=10)
        self.reader = self.socket.makefile("rb")
        connect = f"Connect\t{collection}" + (f"\t{username}\t{password}" if username and password else "")
        self.send(connect)
        answer = self.read()
        if answer != "Connected":
            raise CheckFailed(f"Connect answered {answer!r}, not 'Connected'")

    def send(self, line):
        self.socket.sendall(line.encode() + b"\n")

    def read(self):
        line = self.reader.readline()
        if not line:
            raise CheckFailed("the protocol connection closed")
        return line.decode().rstrip("\n")

    def publish(self, tags, data, timestamp=0):
        self.send(f"Publish\t{tags}\t{timestamp}\t{data}")
        answer = self.read()
        kind, _, value = answer.partition("\t")
        if kind != "Published":
            raise CheckFailed(f"Publish answered {answer!r}")
        return int(value)

    def close(self):
        self.reader.close()
        self.socket.close()


# ---------------------------------------------------------------- the browser

def start_browser(headed):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    if not headed:
        options.add_argument("--headless=new")
    for argument in ("--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={WIDTH},{HEIGHT}",
                     "--force-device-scale-factor=1", "--lang=en-US"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    # The page itself 1280 x 800, whatever the window's frame takes.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
    return driver


def testid(hook, **data):
    selector = f'[data-testid="{hook}"]'
    for key, value in data.items():
        selector += f'[data-{key}="{value}"]'
    return (By.CSS_SELECTOR, selector)


class Console:
    """The console page, addressed by its data-testid hooks."""

    def __init__(self, driver, base_url):
        self.driver = driver
        self.base_url = base_url.rstrip("/")

    def find(self, hook, **data):
        return self.driver.find_element(*testid(hook, **data))

    def find_all(self, hook, **data):
        return self.driver.find_elements(*testid(hook, **data))

    def wait(self, condition, message, timeout=5.0):
        """Waits for condition(); message may be a function, called only on failure to describe it."""
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.02,
                                 ignored_exceptions=(StaleElementReferenceException,)).until(lambda _: condition())
        except TimeoutException:
            raise CheckFailed(message() if callable(message) else message) from None

    def open(self, hash_part=""):
        url = f"{self.base_url}/{hash_part}"
        username, password = os.environ.get("EXAR_USERNAME"), os.environ.get("EXAR_PASSWORD")
        if username and password:
            # A headless browser cannot answer the Basic prompt; the first navigation carries the
            # credentials and the browser then reuses them for the page's requests.
            parts = urllib.parse.urlsplit(url)
            credentials = f"{urllib.parse.quote(username, safe='')}:{urllib.parse.quote(password, safe='')}@"
            url = urllib.parse.urlunsplit(parts._replace(netloc=credentials + parts.netloc))
        self.driver.get(url)

    def tab(self, view):
        self.find(f"tab-{view}").click()
        self.wait(lambda: self.find(f"tab-{view}").get_attribute("aria-selected") == "true", f"the {view} tab is not selected")

    def type(self, name, text):
        field = self.find(name)
        field.clear()
        field.send_keys(text)

    def row_ids(self, name):
        """The data-id of each row, read in one script (rows are re-rendered while a test looks)."""
        return self.driver.execute_script(
            "return [...document.querySelectorAll(arguments[0])].map((row) => Number(row.dataset.id));",
            f'[data-testid="{name}"]')

    def log_text(self):
        return self.find("protocol-log").text

    def screenshot(self, folder, view):
        if not folder:
            return
        os.makedirs(folder, exist_ok=True)
        self.driver.execute_script("window.scrollTo(0, 0)")
        self.driver.save_screenshot(os.path.join(folder, f"console-{view}.png"))


# ---------------------------------------------------------------- the checks

class Run:
    def __init__(self, args):
        self.args = args
        host = args.tcp_host or urllib.parse.urlparse(args.url).hostname or "127.0.0.1"
        self.server = Server(args.url, host, args.port)
        self.name = args.collection
        self.passed = 0

    def check(self, title, function):
        try:
            function()
        except CheckFailed as error:
            raise CheckFailed(f"{title}: {error}") from None
        self.passed += 1
        print(f"  ok  {title}", flush=True)

    def run(self, console):
        self.console = console
        self.server.drop(self.name)
        self.check("the console opens and shows the server", self.opens)
        self.check("a new collection is chosen by name", self.chooses_collection)
        self.check("the publish form stores an event and shows its id", self.publishes_from_form)
        self.check("the browser shows the published event", self.browses_event)
        self.check("re-publish fills the form; the server's error is shown", self.republishes)
        self.check("a TCP publish appears in the live tail within 1 s", self.live_tail)
        self.check("the live tail counts what arrives while paused", self.live_pause)
        self.check("paging by limit with next and previous, kept in the URL", self.pages)
        self.check("newest first", self.newest_first)
        self.check("filtering by tag", self.filters)
        self.check("the NDJSON and CSV exports match the query", self.exports)
        self.check("segments and verify", self.segments)
        self.check("the overview lists the collection", self.overview)
        self.check("jump to time reads from the located offset", self.jumps_to_time)
        self.check("consumer groups: parked events redelivered, discarded, a group deleted", self.groups)
        self.check("a conditional publish is stored once; a stale one shows the actual id", self.publishes_conditionally)
        self.check("drop with its confirm dialog", self.drops)
        self.check("the browser's console has no errors", self.console_clean)

    def opens(self):
        c = self.console
        c.open()
        c.wait(lambda: c.driver.title.startswith("Exar Console"), "the page title is not 'Exar Console'")
        c.wait(lambda: "exar-db" in c.find("server-line").text, "the server line never named exar-db")
        if c.find("tab-overview").get_attribute("aria-selected") != "true":
            raise CheckFailed("the overview is not the first view")

    def chooses_collection(self):
        c = self.console
        c.type("collection-name", self.name + Keys.ENTER)
        c.wait(lambda: c.find("current-collection").text == self.name, "the collection bar does not name it")
        c.wait(lambda: "no events yet" in c.find("browse-status").text, "the browser does not say it has no events")

    def publishes_from_form(self):
        c = self.console
        c.tab("publish")
        c.type("publish-tags", "form created")
        c.type("publish-data", '{"from": "form", "n": 1}')
        c.find("publish-submit").click()
        c.wait(lambda: c.find("publish-result").get_attribute("data-id"), lambda: "no id after Publish: " + c.find("publish-result").text)
        self.form_id = int(c.find("publish-result").get_attribute("data-id"))
        if str(self.form_id) not in c.find("publish-result").text:
            raise CheckFailed("the result does not show the id")
        log = c.log_text()
        if f"Connect→{self.name}" not in log or 'Publish→form created→0→{"from": "form", "n": 1}' not in log:
            raise CheckFailed(f"the message log lacks the Connect and Publish lines: {log[-300:]!r}")
        c.screenshot(self.args.screenshots, "publish")

    def browses_event(self):
        c = self.console
        c.tab("browse")
        c.wait(lambda: c.find_all("event-row", id=self.form_id), "the event's row is missing")
        row = c.find("event-row", id=self.form_id)
        if "form" not in row.text or "created" not in row.text:
            raise CheckFailed(f"the row does not show the tags and data: {row.text!r}")
        if "Subscribe→false→0→25" not in c.log_text():
            raise CheckFailed("the message log lacks the Subscribe line")
        if "time=local" in c.driver.current_url or not row.find_element(By.CSS_SELECTOR, "time").text.endswith("UTC"):
            raise CheckFailed("times are not in UTC by default")
        c.find("time-utc").click()
        c.wait(lambda: not c.find("event-row", id=self.form_id).find_element(By.CSS_SELECTOR, "time").text.endswith("UTC"),
               "the UTC toggle does not switch to local time")
        c.find("time-utc").click()
        copy = c.find("event-row", id=self.form_id).find_element(*testid("event-copy"))
        copy.click()
        c.wait(lambda: copy.text.strip() == "Copied", lambda: f"Copy shows {copy.text!r}")

    def republishes(self):
        c = self.console
        c.find("event-row", id=self.form_id).find_element(*testid("event-republish")).click()
        c.wait(lambda: c.find("tab-publish").get_attribute("aria-selected") == "true", "Re-publish does not open the form")
        if c.find("publish-tags").get_attribute("value") != "form created":
            raise CheckFailed("Re-publish did not fill the tags")
        if c.find("publish-data").get_attribute("value") != '{"from": "form", "n": 1}':
            raise CheckFailed("Re-publish did not fill the data")
        c.type("publish-tags", "bad  tags")
        c.find("publish-submit").click()
        c.wait(lambda: "ValidationError" in c.find("publish-result").text,
               lambda: f"a double space is not refused: {c.find('publish-result').text!r}")
        c.tab("browse")

    def publishes_conditionally(self):
        c = self.console
        c.tab("publish")
        result = lambda: c.find("publish-result")
        c.type("publish-tags", "order-9 created")
        c.type("publish-data", "first")
        c.type("publish-expect-tag", "order-9")
        c.type("publish-expect-id", "0")
        c.find("publish-submit").click()
        c.wait(lambda: result().get_attribute("data-id"), lambda: "no id after a PublishIf: " + result().text)
        first = int(result().get_attribute("data-id"))
        # Expecting 0 again is stale now: nothing is stored, the answer names the tag's last id.
        c.type("publish-data", "second")
        c.find("publish-submit").click()
        c.wait(lambda: result().get_attribute("data-actual-id") == str(first),
               lambda: f"no conflict naming {first}: {result().text!r}")
        if "Conflict" not in result().text or result().get_attribute("data-id"):
            raise CheckFailed(f"the conflict is not shown as one: {result().text!r}")
        c.find("publish-expect-actual").click()
        if c.find("publish-expect-id").get_attribute("value") != str(first):
            raise CheckFailed("'Expect' did not fill the expected id")
        c.find("publish-submit").click()
        c.wait(lambda: result().get_attribute("data-id") == str(first + 1),
               lambda: f"the retry with the actual id was not stored as {first + 1}: {result().text!r}")
        c.type("publish-expect-id", "x")
        c.find("publish-submit").click()
        c.wait(lambda: "whole number" in result().text, lambda: f"a bad expected id is not refused: {result().text!r}")
        c.type("publish-expect-tag", "")
        c.type("publish-expect-id", "")

    def live_tail(self):
        c = self.console
        c.tab("live")
        c.find("live-start").click()
        c.wait(lambda: c.find("live-state").text.startswith("Tailing"), "the live tail never started")
        connection = self.server.tcp(self.name)
        try:
            sent = time.monotonic()
            connection.send("Publish\tfrom-tcp\t0\thello")
            answer = connection.read()
            if not answer.startswith("Published\t"):
                raise CheckFailed(f"Publish answered {answer!r}")
            event_id = int(answer.split("\t")[1])
            c.wait(lambda: c.find_all("live-row", id=event_id), "the event did not appear within 1 s", timeout=1.0)
            elapsed = time.monotonic() - sent
        finally:
            connection.close()
        print(f"      (appeared after {elapsed * 1000:.0f} ms)")
        self.tcp_id = event_id
        if "Subscribe→true→" not in c.log_text():
            raise CheckFailed("the message log lacks the live Subscribe line")

    def live_pause(self):
        c = self.console
        connection = self.server.tcp(self.name)
        try:
            shown = [connection.publish(f"order {kind}", json.dumps({"order": 100 + n, "kind": kind}))
                     for n, kind in enumerate(("created", "paid", "packed", "shipped", "delivered", "closed"))]
        finally:
            connection.close()
        c.wait(lambda: c.row_ids("live-row")[:len(shown)] == list(reversed(shown)), "the events before the pause are not shown")
        c.find("live-pause").click()
        connection = self.server.tcp(self.name)
        try:
            ids = [connection.publish("paused", f"while paused {n}") for n in range(3)]
        finally:
            connection.close()
        c.wait(lambda: c.find("live-pending").text == "3", lambda: f"the pending count is {c.find('live-pending').text}, not 3")
        if c.find_all("live-row", id=ids[0]):
            raise CheckFailed("a row was added while paused")
        c.screenshot(self.args.screenshots, "live")
        c.find("live-pause").click()
        c.wait(lambda: c.row_ids("live-row")[:3] == list(reversed(ids)), "the paused events are not on top after Resume")
        c.find("live-stop").click()
        c.wait(lambda: "Unsubscribe" in c.log_text(), "Stop did not log Unsubscribe")

    def pages(self):
        c = self.console
        connection = self.server.tcp(self.name)
        try:
            self.bulk_ids = [connection.publish(f"bulk {'even' if n % 2 == 0 else 'odd'}", json.dumps({"n": n})) for n in range(BULK)]
        finally:
            connection.close()
        c.tab("browse")
        c.type("browse-offset", "0")
        c.type("browse-limit", "10")
        Select(c.find("browse-order")).select_by_value("asc")
        c.find("browse-load").click()
        c.wait(lambda: c.row_ids("event-row") == list(range(1, 11)), lambda: f"page 1 is {c.row_ids('event-row')}")
        c.find("browse-next").click()
        c.wait(lambda: c.row_ids("event-row") == list(range(11, 21)), lambda: f"page 2 is {c.row_ids('event-row')}")
        if "offset=10" not in c.driver.current_url or "limit=10" not in c.driver.current_url:
            raise CheckFailed(f"the URL does not keep the page: {c.driver.current_url}")
        c.screenshot(self.args.screenshots, "browse")
        c.driver.refresh()
        c.wait(lambda: c.row_ids("event-row") == list(range(11, 21)), "a reload does not restore the page")
        c.find("browse-prev").click()
        c.wait(lambda: c.row_ids("event-row") == list(range(1, 11)), lambda: f"Previous shows {c.row_ids('event-row')}")
        if c.find("browse-prev").get_attribute("disabled") is None:
            raise CheckFailed("Previous is enabled on the first page")

    def newest_first(self):
        c = self.console
        Select(c.find("browse-order")).select_by_value("desc")
        last = self.bulk_ids[-1]
        c.wait(lambda: c.row_ids("event-row") == list(range(last, last - 10, -1)), lambda: f"newest first shows {c.row_ids('event-row')}")
        c.find("browse-next").click()
        c.wait(lambda: c.row_ids("event-row") == list(range(last - 10, last - 20, -1)), lambda: f"the next older page is {c.row_ids('event-row')}")
        c.find("browse-prev").click()
        c.wait(lambda: c.row_ids("event-row") == list(range(last, last - 10, -1)), lambda: f"Previous (newer) shows {c.row_ids('event-row')}")

    def filters(self):
        c = self.console
        Select(c.find("browse-order")).select_by_value("asc")
        c.type("browse-tag", "odd")
        c.find("browse-load").click()
        odd = [event_id for n, event_id in enumerate(self.bulk_ids) if n % 2 == 1]
        c.wait(lambda: c.row_ids("event-row") == odd[:10], lambda: f"tag odd shows {c.row_ids('event-row')}")
        for row in c.find_all("event-row"):
            if "odd" not in [tag.text for tag in row.find_elements(By.CSS_SELECTOR, ".tag")]:
                raise CheckFailed(f"row {row.get_attribute('data-id')} lacks the tag")
        if "tag=odd" not in c.driver.current_url:
            raise CheckFailed("the URL does not keep the tag")
        if "Subscribe→false→0→10→odd" not in c.log_text():
            raise CheckFailed("the message log lacks the Subscribe line with the tag")

    def exports(self):
        c = self.console
        odd = [event_id for n, event_id in enumerate(self.bulk_ids) if n % 2 == 1]
        ndjson_href = c.find("export-ndjson").get_attribute("href")
        csv_href = c.find("export-csv").get_attribute("href")
        for href, expected in ((ndjson_href, "format=ndjson"), (csv_href, "format=csv")):
            if expected not in href or "tag=odd" not in href:
                raise CheckFailed(f"the export link is {href}")
        path = lambda href: urllib.parse.urlparse(href)._replace(scheme="", netloc="").geturl()
        lines = [json.loads(text) for text in self.server.request("GET", path(ndjson_href)).splitlines() if text]
        if [event["id"] for event in lines] != odd:
            raise CheckFailed(f"the NDJSON export has ids {[event['id'] for event in lines]}, not {odd}")
        if any("odd" not in event["tags"] for event in lines):
            raise CheckFailed("an NDJSON line lacks the tag")
        rows = list(csv.reader(io.StringIO(self.server.request("GET", path(csv_href)))))
        if rows[0] != ["id", "timestamp", "tags", "data"]:
            raise CheckFailed(f"the CSV header is {rows[0]}")
        if [int(row[0]) for row in rows[1:]] != odd or json.loads(rows[1][3]) != {"n": 1}:
            raise CheckFailed(f"the CSV rows are {rows[1:3]}…")

    def segments(self):
        c = self.console
        c.tab("segments")
        c.wait(lambda: c.find_all("segment-row"), "the segments table has no row")
        c.find("verify-button").click()
        c.wait(lambda: c.find("verify-result").get_attribute("data-ok") is not None, "Verify gave no result")
        if c.find("verify-result").get_attribute("data-ok") != "true":
            raise CheckFailed(f"Verify failed: {c.find('verify-result').text}")
        c.screenshot(self.args.screenshots, "segments")

    def park_two(self, group):
        """A member takes two events and disconnects unacknowledged: with max_deliver = 1 both are parked."""
        member = self.server.tcp(self.name)
        try:
            member.send(f"Join\t{group}\t0\t2")
            lines = [member.read() for _ in range(3)]
            if lines[0] != "Subscribed" or not all(line.startswith("Event\t") for line in lines[1:]):
                raise CheckFailed(f"Join answered {lines!r}")
        finally:
            member.close()

    def groups(self):
        c = self.console
        group = "browser-workers"
        self.park_two(group)
        c.tab("groups")
        cell = lambda hook: c.find(hook, name=group) if hook == "group-row" else c.find("group-row", name=group).find_element(*testid(hook))
        refresh_until = lambda condition, message: c.wait(lambda: condition() or c.find("groups-refresh").click(), message)
        refresh_until(lambda: c.find_all("group-row", name=group) and cell("group-parked").text == "2",
                      lambda: f"the group does not show 2 parked events: {[row.text for row in c.find_all('group-row')]}")
        if cell("group-members").text != "0":
            raise CheckFailed(f"the group shows {cell('group-members').text} members, not 0")
        c.screenshot(self.args.screenshots, "groups")
        cell("group-redeliver").click()
        c.wait(lambda: "2 parked events redelivered" in c.find("groups-result").text,
               lambda: f"Redeliver said {c.find('groups-result').text!r}")
        c.wait(lambda: cell("group-parked").text == "0", "the parked events are still shown after Redeliver")
        answer = json.loads(self.server.request("GET", f"/api/v1/collections/{self.name}/groups/{group}"))
        if answer["parked"] != 0 or answer["waiting"] != 2:
            raise CheckFailed(f"after Redeliver the server has {answer}")
        # The redelivered events go to the next member, which also leaves them: parked again, then discarded.
        self.park_two(group)
        refresh_until(lambda: cell("group-parked").text == "2", "the events are not parked again")
        cell("group-discard").click()
        c.wait(lambda: "2 parked events discarded" in c.find("groups-result").text,
               lambda: f"Discard said {c.find('groups-result').text!r}")
        c.wait(lambda: cell("group-parked").text == "0", "the parked events are still shown after Discard")
        cell("group-delete").click()
        c.wait(lambda: cell("group-delete").text == "Confirm delete", "Delete did not ask again")
        cell("group-delete").click()
        c.wait(lambda: not c.find_all("group-row", name=group), "the deleted group is still listed")
        listed = json.loads(self.server.request("GET", f"/api/v1/collections/{self.name}/groups"))
        if listed:
            raise CheckFailed(f"the server still lists {listed}")
        if "DELETE" not in c.log_text() or "/groups/" not in c.log_text():
            raise CheckFailed("the message log does not show the group's DELETE")

    def overview(self):
        c = self.console
        c.tab("overview")
        c.wait(lambda: c.find_all("collection-row", name=self.name), "no row for the collection")
        expected = f"{self.bulk_ids[-1]}"
        row = lambda: c.find("collection-row", name=self.name)
        c.wait(lambda: expected in row().text.split(), lambda: f"the row does not count {expected} events: {row().text!r}")
        # A trickle of publishes over a few polls, so that the rate sparklines have something to draw.
        connection = self.server.tcp(self.name)
        try:
            for n in range(150):
                connection.publish("trickle", json.dumps({"n": n}))
                time.sleep(0.02 + 0.008 * (n % 12))
        finally:
            connection.close()
        time.sleep(2.2)
        c.screenshot(self.args.screenshots, "overview")
        # Arrow keys move between the tabs.
        c.find("tab-overview").send_keys(Keys.ARROW_RIGHT)
        c.wait(lambda: c.find("tab-browse").get_attribute("aria-selected") == "true", "ArrowRight did not select Browse")
        c.wait(lambda: c.driver.switch_to.active_element.get_attribute("id") == "tab-browse", "ArrowRight did not move focus")

    def jump(self, value):
        """Sets the datetime-local field (its typed form depends on the browser's locale) and jumps."""
        c = self.console
        c.driver.execute_script(
            "const field = arguments[0]; field.value = arguments[1]; field.dispatchEvent(new Event('input'));",
            c.find("browse-jump-time"), value)
        c.find("browse-jump").click()

    def jumps_to_time(self):
        c = self.console
        base = 4102444800000  # 2100-01-01T00:00:00Z, after every other event of the run
        stamps = [base + 60000, base, base + 120000, base + 180000]  # out of order: the running maximum counts
        connection = self.server.tcp(self.name)
        try:
            ids = [connection.publish("jump", json.dumps({"at": stamp}), stamp) for stamp in stamps]
        finally:
            connection.close()
        c.tab("browse")
        c.type("browse-tag", "")
        c.find("browse-load").click()
        if c.find("browse-jump-zone").text != "UTC":
            raise CheckFailed(f"the zone label is {c.find('browse-jump-zone').text!r}")
        # 00:01:30: the first event whose running maximum reaches it is the third (00:02).
        self.jump("2100-01-01T00:01:30")
        c.wait(lambda: c.row_ids("event-row") == ids[2:], lambda: f"the jump shows {c.row_ids('event-row')}, not {ids[2:]}")
        if f"offset={ids[2] - 1}" not in c.driver.current_url:
            raise CheckFailed(f"the URL does not keep the located offset: {c.driver.current_url}")
        log = c.log_text()
        if f"Locate→{base + 90000}" not in log or f"Located→{ids[2] - 1}" not in log:
            raise CheckFailed("the message log lacks Locate and Located")
        c.wait(lambda: "from 2100-01-01 00:01:30.000 UTC" in c.find("browse-status").text,
               lambda: f"the status is {c.find('browse-status').text!r}")
        # Exactly 00:00: the first event (00:01) already reaches it, though the second is stamped 00:00.
        self.jump("2100-01-01T00:00:00.000")
        c.wait(lambda: c.row_ids("event-row") == ids, lambda: f"the jump to 00:00 shows {c.row_ids('event-row')}")
        # After every event: nothing to show, the offset is the last id.
        self.jump("2100-01-01T00:05")
        c.wait(lambda: "No events at or after 2100-01-01 00:05:00.000 UTC" in c.find("browse-status").text,
               lambda: f"after the end the status is {c.find('browse-status').text!r}")
        if f"offset={ids[-1]}" not in c.driver.current_url:
            raise CheckFailed(f"after the end the URL is {c.driver.current_url}")
        # Before every event: the start; and the field read as local time shows its zone.
        self.jump("2000-01-01T00:00")
        c.wait(lambda: c.row_ids("event-row")[:1] == [1], lambda: f"the jump to 2000 shows {c.row_ids('event-row')}")
        self.jump("")
        c.wait(lambda: "Choose a date and time" in c.find("browse-status").text, "an empty time gives no error")
        c.find("time-utc").click()
        c.wait(lambda: c.find("browse-jump-zone").text[:4] in ("UTC+", "UTC-"),
               lambda: f"in local time the zone label is {c.find('browse-jump-zone').text!r}")
        c.find("time-utc").click()

    def drops(self):
        c = self.console
        c.find("drop-button").click()
        c.wait(lambda: c.find("drop-dialog").get_attribute("open") is not None, "the confirm dialog did not open")
        c.find("drop-cancel").click()
        c.wait(lambda: c.find("drop-dialog").get_attribute("open") is None, "Cancel did not close the dialog")
        if not c.find_all("collection-row", name=self.name):
            raise CheckFailed("Cancel dropped the collection")
        c.find("drop-button").click()
        c.find("drop-confirm").click()
        c.wait(lambda: not c.find_all("collection-row", name=self.name), "the collection is still listed after Drop")
        if f"Drop→{self.name}" not in c.log_text() or "Dropped" not in c.log_text():
            raise CheckFailed("the message log lacks Drop and Dropped")

    def console_clean(self):
        entries = self.console.driver.get_log("browser")
        # Chromium logs every HTTP error answer as "Failed to load resource"; the 400 that the
        # re-publish check provokes on purpose (a double space in the tags) and the 409 of the
        # conditional publish check's stale expectation are expected.
        provoked = [f"/api/v1/collections/{self.name}/events - Failed to load resource: the server responded with a status of {status}"
                    for status in (400, 409)]
        bad = [entry for entry in entries
               if (entry.get("level") == "SEVERE" and not any(p in entry.get("message", "") for p in provoked))
               or "Content Security Policy" in entry.get("message", "")]
        if bad:
            raise CheckFailed("; ".join(entry["message"] for entry in bad))


def main():
    args = parse_arguments()
    run = Run(args)
    try:
        driver = start_browser(args.headed)
    except WebDriverException as error:
        print(f"browser test FAILED: cannot start {CHROMIUM} with {CHROMEDRIVER} "
              f"(scripts/setup-browser.sh installs them): {error.msg}", file=sys.stderr)
        return 1
    try:
        run.run(Console(driver, args.url))
    except CheckFailed as error:
        print(f"browser test FAILED after {run.passed} checks: {error}", file=sys.stderr)
        return 1
    except (OSError, urllib.error.URLError) as error:
        print(f"browser test FAILED after {run.passed} checks: the server at {args.url} / port {args.port}: {error}",
              file=sys.stderr)
        return 1
    finally:
        driver.quit()
    print(f"browser test: {run.passed} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
