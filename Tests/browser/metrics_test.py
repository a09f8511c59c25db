#!/usr/bin/env python3
"""Checks exar-db's /metrics against what a protocol client does.

    python3 Tests/browser/metrics_test.py --url http://127.0.0.1:38581 --port 38580 [--events 25]

Scrapes /metrics (parsed with prometheus_client), publishes N events over the protocol port
to a fresh collection, scrapes again and checks that exar_events_appended_total of that
collection rose by N, exar_collection_last_id is the last id, the count of
exar_publish_duration_seconds rose by at least N and exar_build_info is there. The URL and
port also come from EXAR_HTTP_URL and EXAR_PORT (credentials from EXAR_USERNAME and
EXAR_PASSWORD). Drops the collection afterwards. Exits 1 with the failed check.
"""

import argparse
import base64
import os
import socket
import sys
import time
import urllib.parse
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


class CheckFailed(Exception):
    pass


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("EXAR_HTTP_URL", "http://127.0.0.1:38581"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("EXAR_PORT", "38580")))
    parser.add_argument("--tcp-host", default=None, help="the protocol host (default: the URL's host)")
    parser.add_argument("--events", type=int, default=25, help="how many events to publish")
    return parser.parse_args()


class Http:
    def __init__(self, url):
        self.url = url.rstrip("/")
        username, password = os.environ.get("EXAR_USERNAME"), os.environ.get("EXAR_PASSWORD")
        self.authorization = None
        if username and password:
            self.authorization = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()

    def request(self, method, path):
        request = urllib.request.Request(self.url + path, method=method)
        if method != "GET":
            request.add_header("Content-Type", "application/json")
        if self.authorization:
            request.add_header("Authorization", self.authorization)
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.headers.get("Content-Type", ""), response.read().decode()


def scrape(http):
    """Every sample as {(sample name, sorted labels): value}, and the families' names and types."""
    content_type, text = http.request("GET", "/metrics")
    if not content_type.startswith("text/plain"):
        raise CheckFailed(f"/metrics is {content_type!r}, not text/plain")
    samples = {}
    families = {}
    try:
        for family in text_string_to_metric_families(text):
            families[family.name] = family.type
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    except ValueError as error:
        raise CheckFailed(f"/metrics does not parse as the Prometheus text format: {error}") from None
    return samples, families


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def publish_over_tcp(host, port, collection, count):
    username, password = os.environ.get("EXAR_USERNAME"), os.environ.get("EXAR_PASSWORD")
    with socket.create_connection((host, port), timeout=10) as connection:
        reader = connection.makefile("rb")
        credentials = f"\t{username}\t{password}" if username and password else ""
        connection.sendall(f"Connect\t{collection}{credentials}\n".encode())
        answer = reader.readline().decode().rstrip("\n")
        if answer != "Connected":
            raise CheckFailed(f"Connect answered {answer!r}")
        # Pipelined, as a client may: every line first, then every answer.
        connection.sendall("".join(f"Publish\tmetrics n{n % 3}\t0\tevent {n}\n" for n in range(count)).encode())
        ids = []
        for _ in range(count):
            answer = reader.readline().decode().rstrip("\n")
            kind, _, text = answer.partition("\t")
            if kind != "Published":
                raise CheckFailed(f"Publish answered {answer!r}")
            ids.append(int(text))
        reader.close()
    return ids


def main():
    args = parse_arguments()
    http = Http(args.url)
    host = args.tcp_host or urllib.parse.urlparse(args.url).hostname or "127.0.0.1"
    collection = f"metrics-test-{os.getpid()}-{int(time.time())}"
    passed = 0

    def check(condition, message):
        nonlocal passed
        if not condition:
            raise CheckFailed(message)
        passed += 1

    try:
        before, families = scrape(http)
        check(value(before, "exar_events_appended_total", collection=collection) is None,
              f"the fresh collection {collection} already has metrics")
        builds = [key for key in before if key[0] == "exar_build_info"]
        check(builds and all(before[key] == 1 for key in builds) and any(dict(key[1]).get("version") for key in builds),
              "exar_build_info{version} = 1 is missing")
        check(families.get("exar_publish_duration_seconds") == "histogram",
              f"exar_publish_duration_seconds is {families.get('exar_publish_duration_seconds')!r}, not a histogram")
        publishes_before = value(before, "exar_publish_duration_seconds_count") or 0

        ids = publish_over_tcp(host, args.port, collection, args.events)
        check(ids == list(range(ids[0], ids[0] + args.events)), f"the ids are not consecutive: {ids}")

        # The counters are the engine's, read at the scrape; give a write in flight a moment.
        deadline = time.monotonic() + 3
        while True:
            after, _ = scrape(http)
            appended = value(after, "exar_events_appended_total", collection=collection)
            if appended == args.events or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        check(appended == args.events,
              f"exar_events_appended_total{{collection={collection!r}}} is {appended}, not {args.events}")
        last_id = value(after, "exar_collection_last_id", collection=collection)
        check(last_id == ids[-1], f"exar_collection_last_id is {last_id}, not {ids[-1]}")
        first_id = value(after, "exar_collection_first_id", collection=collection)
        check(first_id == ids[0], f"exar_collection_first_id is {first_id}, not {ids[0]}")
        publishes_after = value(after, "exar_publish_duration_seconds_count") or 0
        check(publishes_after - publishes_before >= args.events,
              f"exar_publish_duration_seconds_count rose by {publishes_after - publishes_before}, not at least {args.events}")
        infinite = value(after, "exar_publish_duration_seconds_bucket", le="+Inf")
        check(infinite == publishes_after, f"the +Inf bucket ({infinite}) is not the count ({publishes_after})")
    except CheckFailed as error:
        print(f"metrics test FAILED after {passed} checks: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"metrics test FAILED after {passed} checks: the server at {args.url} / port {args.port}: {error}",
              file=sys.stderr)
        return 1
    finally:
        try:
            http.request("DELETE", f"/api/v1/collections/{urllib.parse.quote(collection, safe='')}")
        except OSError:
            pass
    print(f"metrics test: {passed} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
