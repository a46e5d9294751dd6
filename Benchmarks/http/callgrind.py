#!/usr/bin/env python3
"""Instructions per request of each app variant, counted by callgrind.

Wall-clock ratios on a shared machine move by tens of percent between runs; instruction
counts do not. This runs `http-app VARIANT` under `valgrind --tool=callgrind` with
instrumentation off, signs in warm sessions and sends warm-up requests, then switches
instrumentation on (`callgrind_control -i on`), sends a fixed number of requests of one
kind from this process over one keep-alive connection, one at a time, dumps the counters
and divides the server's instructions (every thread: event loops, tasks, SQLite) by the
number of requests.

    python3 callgrind.py [--requests 2000] [--variants vapor-store,vapor-memory] [--kinds read,bots]

Kinds: read (GET /read on a warm session), write (POST /write on a warm session), bots
(GET /read without a cookie), unknown (GET /read with a random, never-issued id). The
callgrind files are kept under --keep DIR when given (open them with callgrind_annotate).
"""
import argparse
import http.client
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

import run

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def request_headers(kind, cookie_name, cookies, index):
    if kind == "bots":
        return {}
    if kind == "unknown":
        return {"Cookie": f"{cookie_name}=" + "".join(random.choice(ALPHABET) for _ in range(22))}
    return {"Cookie": cookies[index % len(cookies)]}


def send(connection, kind, headers):
    method, path = ("POST", "/write") if kind == "write" else ("GET", "/read")
    connection.request(method, path, headers=headers)
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"{method} {path} answered {response.status}")


def total_instructions(path):
    with open(path) as dump:
        for line in dump:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def measure(binary, variant, kind, requests, keep):
    directory = tempfile.mkdtemp(prefix="http-callgrind-")
    port = run.free_port()
    out = os.path.join(directory, "callgrind.out")
    log = open(os.path.join(directory, "server.log"), "w")
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
         binary, variant, str(port), os.path.join(directory, "sessions.db")],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 600
        while True:
            try:
                run.wait_for_port(port, server)
                break
            except RuntimeError:
                if server.poll() is not None or time.time() > deadline:
                    raise
        name = run.cookie_name(variant)
        cookies = [run.login(port, name) for _ in range(16)]
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for index in range(200):  # warm-up: lazy initialisation, caches, page cache
            send(connection, kind, request_headers(kind, name, cookies, index))
        subprocess.run(["callgrind_control", "-i", "on", str(server.pid)], check=True, capture_output=True)
        for index in range(requests):
            send(connection, kind, request_headers(kind, name, cookies, index))
        subprocess.run(["callgrind_control", "--dump", str(server.pid)], check=True, capture_output=True)
        connection.close()
        dumps = [f for f in os.listdir(directory) if f.startswith("callgrind.out.")]
        if not dumps:
            raise RuntimeError("callgrind wrote no dump")
        dump = os.path.join(directory, sorted(dumps)[-1])
        if keep:
            os.makedirs(keep, exist_ok=True)
            shutil.copy(dump, os.path.join(keep, f"callgrind.{variant}.{kind}"))
        return total_instructions(dump) / requests
    finally:
        server.kill()
        server.wait()
        log.close()
        shutil.rmtree(directory)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--variants", default="vapor-store,vapor-store-typed,vapor-memory,hb-native,hb-store,hb-memory")
    parser.add_argument("--kinds", default="read,write,bots,unknown")
    parser.add_argument("--binary", default=os.path.join(run.HERE, ".build-drivers-http", "release", "http-app"))
    parser.add_argument("--keep", default=None)
    options = parser.parse_args()
    print(f"{'kind':8} {'variant':17} {'instructions/request':>21}")
    for kind in options.kinds.split(","):
        for variant in options.variants.split(","):
            per_request = measure(options.binary, variant, kind, options.requests, options.keep)
            print(f"{kind:8} {variant:17} {per_request:21,.0f}", flush=True)


if __name__ == "__main__":
    main()
