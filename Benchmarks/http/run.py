#!/usr/bin/env python3
"""End-to-end HTTP comparison of session back ends.

Starts each app variant of `http-app` on loopback, creates warm sessions, drives it with
wrk (16 connections) for each traffic mix, and prints one table: requests/s, p50/p99
latency, session rows at the end (after 256 warm sessions were created) and rows added by
the run, bytes the server process wrote to storage
(/proc/PID/io write_bytes: pages dirtied, so rewriting a page still dirty in the page cache
is not counted again), and non-2xx answers (409: a write to a session renewed by a
concurrent login), and the server's CPU time per request (user + system, every thread, from
/proc/PID/stat: less sensitive to other load on the machine than requests/s). Writes
results.json and
results.svg next to this script. Each (variant, mix) run gets a fresh database and server.

The PostgreSQL variants (`-pg`: this store and Fluent's sessions through
fluent-postgres-driver) run against the server of `--postgres-url` (default:
$SESSION_STORE_POSTGRES_URL, as `eval "$(bash .ci/postgres.sh start DIR plain)"` prints it);
their tables are dropped before each run, rows are counted with psql, and "disk bytes" is the
WAL the server generated during the run (pg_current_wal_insert_lsn), since the app process
itself writes nothing. Their CPU per request is the app's only, not the database server's.

Rounds are interleaved: each round runs every variant once per mix, back to back (in
reverse order every other round), so a store and its in-memory ceiling always run minutes
apart at most, and the ratios are taken within a round, then their median over the rounds.

    python3 run.py [--seconds 10] [--rounds 2] [--connections 16] [--variants a,b] [--mixes read,mix]
                   [--postgres-url postgres://user:pass@127.0.0.1:5432/db]
"""
import argparse
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import statistics
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = ["vapor-store", "vapor-store-typed", "vapor-fluent", "vapor-fluent-wal", "vapor-memory", "hb-store", "hb-native", "hb-memory",
            "vapor-store-pg", "vapor-fluent-pg"]
# Run only when named: the persist driver over the core's InMemoryBackend (its own cost).
DIAGNOSTIC_VARIANTS = ["hb-store-inmemory"]
MIXES = ["read", "mix", "bots", "unknown"]
# Also accepted by --mixes: "write" (every request a counter increment), to look at saves alone.
COOKIE = {"vapor": "vapor-session", "hb-native": "session", "hb": "SESSION_ID"}
TABLE = {"vapor-store": "sessions", "vapor-store-typed": "sessions", "hb-store": "sessions", "hb-native": "sessions",
         "vapor-fluent": "_fluent_sessions", "vapor-fluent-wal": "_fluent_sessions",
         "vapor-store-pg": "http_sessions", "vapor-fluent-pg": "_fluent_sessions"}
WARM_SESSIONS = 256


def cookie_name(variant):
    if variant.startswith("vapor"):
        return COOKIE["vapor"]
    return COOKIE["hb-native"] if variant == "hb-native" else COOKIE["hb"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, process):
    for _ in range(600):
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start listening")


def login(port, name):
    connection = http.client.HTTPConnection("127.0.0.1", port)
    connection.request("POST", "/login")
    response = connection.getresponse()
    body = response.read()
    if response.status != 200 or not body.startswith(b"login:"):
        raise RuntimeError(f"login answered {response.status} {body!r}")
    for header, value in response.getheaders():
        if header.lower() == "set-cookie" and value.startswith(name + "="):
            connection.close()
            return value.split(";", 1)[0]
    raise RuntimeError("login set no session cookie")


def write_bytes(pid):
    with open(f"/proc/{pid}/io") as io:
        for line in io:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    raise RuntimeError("no write_bytes in /proc/PID/io")


def cpu_seconds(pid):
    """User plus system CPU time the process used so far (every thread), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def psql(url, sql):
    """One statement through psql on the PostgreSQL server; returns its single value."""
    return subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def on_postgres(variant):
    return variant.endswith("-pg")


def reset_postgres(url):
    """Drops every table a run of a PostgreSQL variant makes, so each starts on an empty database."""
    psql(url, "DROP TABLE IF EXISTS http_sessions, _fluent_sessions, _fluent_migrations, "
              "session_store_schema, session_store_lease")


def wal_position(url):
    return int(psql(url, "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint"))


def count_rows(path, variant, url=None):
    table = TABLE.get(variant)
    if table is None:
        return None
    if on_postgres(variant):
        return int(psql(url, f"SELECT count(*) FROM {table}"))
    database = sqlite3.connect(path)
    try:
        return database.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        database.close()


def run_one(binary, variant, mix, seconds, connections, postgres_url=None):
    directory = tempfile.mkdtemp(prefix="http-bench-")
    path = os.path.join(directory, "sessions.db")
    if on_postgres(variant):
        if not postgres_url:
            raise RuntimeError(f"{variant} needs --postgres-url or SESSION_STORE_POSTGRES_URL")
        reset_postgres(postgres_url)
        path = postgres_url + ("&" if "?" in postgres_url else "?") + "table=http_sessions"
    port = free_port()
    log = open(os.path.join(directory, "server.log"), "w")
    server = subprocess.Popen([binary, variant, str(port), path], stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            wait_for_port(port, server)
        except RuntimeError:
            log.flush()
            with open(os.path.join(directory, "server.log")) as text:
                sys.stderr.write(text.read())
            raise
        name = cookie_name(variant)
        cookies = [login(port, name) for _ in range(WARM_SESSIONS)]
        cookie_file = os.path.join(directory, "cookies.txt")
        with open(cookie_file, "w") as out:
            out.write("\n".join(cookies) + "\n")
        rows_before = count_rows(path, variant, postgres_url)
        written_before = wal_position(postgres_url) if on_postgres(variant) else write_bytes(server.pid)
        cpu_before = cpu_seconds(server.pid)
        output = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", os.path.join(HERE, "sessions.lua"),
             f"http://127.0.0.1:{port}", "--", mix, cookie_file, name, "2"],
            check=True, capture_output=True, text=True).stdout
        written = (wal_position(postgres_url) if on_postgres(variant) else write_bytes(server.pid)) - written_before
        cpu = cpu_seconds(server.pid) - cpu_before
        line = next(l for l in output.splitlines() if l.startswith("RESULT "))
        result = json.loads(line[len("RESULT "):])
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
        # Vapor + Fluent 4.13 may crash while shutting down with requests still open
        # (Request.db after the databases are gone): reported, the figures are taken already.
        if server.returncode not in (0, -signal.SIGINT):
            print(f"  note: {variant} exited with {server.returncode} at shutdown", file=sys.stderr)
        rows_after = count_rows(path, variant, postgres_url)
        return {
            "variant": variant, "mix": mix,
            "requests_per_s": result["requests"] / (result["duration_us"] / 1e6),
            "p50_ms": result["p50_us"] / 1000, "p99_ms": result["p99_us"] / 1000,
            "errors": result["errors"], "non2xx": result["non2xx"],
            "rows_before": rows_before, "rows_after": rows_after,
            "rows_added": None if rows_after is None else rows_after - rows_before,
            "requests": result["requests"],
            "server_cpu_us_per_request": cpu * 1e6 / max(result["requests"], 1),
            "bytes_written": written,
        }
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        log.close()
        subprocess.run(["rm", "-rf", directory], check=True)


def svg(results, mixes, variants, path):
    """A grouped bar chart of requests/s: one group per mix, one bar per variant."""
    colors = ["#1f77b4", "#d62728", "#ff7f0e", "#7f7f7f", "#2ca02c", "#17becf", "#bcbd22"]
    width, height, left, bottom = 900, 420, 70, 60
    peak = max(r["requests_per_s"] for r in results) or 1
    group = (width - left - 20) / len(mixes)
    bar = group / (len(variants) + 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 40}" font-family="sans-serif" font-size="12">',
             f'<text x="{left}" y="16">requests/s by traffic mix (wrk, loopback; higher is better)</text>']
    for tick in range(6):
        value = peak * tick / 5
        y = height - bottom - (height - bottom - 30) * tick / 5
        parts.append(f'<line x1="{left}" x2="{width - 20}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value:,.0f}</text>')
    for m, mix in enumerate(mixes):
        x0 = left + m * group
        parts.append(f'<text x="{x0 + group / 2:.1f}" y="{height - bottom + 18}" text-anchor="middle">{mix}</text>')
        for v, variant in enumerate(variants):
            r = next((r for r in results if r["mix"] == mix and r["variant"] == variant), None)
            if r is None:
                continue
            h = (height - bottom - 30) * r["requests_per_s"] / peak
            x = x0 + bar / 2 + v * bar
            parts.append(f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{bar * 0.9:.1f}" height="{h:.1f}" fill="{colors[v % len(colors)]}"/>')
    for v, variant in enumerate(variants):
        x = left + v * 120
        parts.append(f'<rect x="{x}" y="{height + 10}" width="10" height="10" fill="{colors[v % len(colors)]}"/>')
        parts.append(f'<text x="{x + 14}" y="{height + 19}">{variant}</text>')
    parts.append("</svg>")
    with open(path, "w") as out:
        out.write("\n".join(parts) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--variants", help="default: every variant but the diagnostic ones; the -pg ones only with a PostgreSQL URL")
    parser.add_argument("--mixes", default=",".join(MIXES))
    parser.add_argument("--binary", default=os.path.join(HERE, ".build-drivers-http", "release", "http-app"))
    parser.add_argument("--out", default=HERE)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--postgres-url", default=os.environ.get("SESSION_STORE_POSTGRES_URL"))
    options = parser.parse_args()
    variants = (options.variants.split(",") if options.variants
                else [v for v in VARIANTS if options.postgres_url or not on_postgres(v)])
    unknown = [v for v in variants if v not in VARIANTS + DIAGNOSTIC_VARIANTS]
    if unknown:
        parser.error(f"unknown variants: {', '.join(unknown)}")
    mixes = options.mixes.split(",")
    results = []
    for round_index in range(options.rounds):
        order = variants if round_index % 2 == 0 else list(reversed(variants))
        for mix in mixes:
            for variant in order:
                result = run_one(options.binary, variant, mix, options.seconds, options.connections, options.postgres_url)
                result["round"] = round_index
                results.append(result)
                print(f"  round {round_index + 1} {variant:17} {mix:8} {result['requests_per_s']:10,.0f} req/s",
                      file=sys.stderr, flush=True)
    print(f"\n{'mix':8} {'variant':17} {'round':>5} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'rows at end':>11} "
          f"{'rows added':>10} {'disk bytes':>12} {'non-2xx':>7} {'cpu us/req':>10}")
    for r in sorted(results, key=lambda r: (mixes.index(r["mix"]), variants.index(r["variant"]), r["round"])):
        rows = "-" if r["rows_after"] is None else f"{r['rows_after']:,}"
        added = "-" if r["rows_added"] is None else f"{r['rows_added']:+,}"
        print(f"{r['mix']:8} {r['variant']:17} {r['round'] + 1:5} {r['requests_per_s']:9,.0f} {r['p50_ms']:7.2f} "
              f"{r['p99_ms']:7.2f} {rows:>11} {added:>10} {r['bytes_written']:12,} {r['errors'] + r['non2xx']:7} "
              f"{r['server_cpu_us_per_request']:10.1f}")
    pairs = [("vapor-store", "vapor-memory"), ("vapor-store-typed", "vapor-memory"),
             ("vapor-store", "vapor-fluent"), ("hb-native", "hb-memory"), ("hb-store", "hb-memory"), ("hb-store-inmemory", "hb-memory"),
             ("vapor-store-pg", "vapor-fluent-pg"), ("vapor-store-pg", "vapor-memory"), ("vapor-fluent-pg", "vapor-memory")]
    ratios = {}
    for mix in mixes:
        for store, ceiling in pairs:
            per_round = []
            for round_index in range(options.rounds):
                by = {r["variant"]: r["requests_per_s"] for r in results
                      if r["mix"] == mix and r["round"] == round_index}
                if store in by and ceiling in by:
                    per_round.append(by[store] / by[ceiling])
            if per_round:
                ratios[f"{mix}: {store} / {ceiling}"] = {"median": statistics.median(per_round), "rounds": per_round}
    print()
    for name, value in ratios.items():
        rounds = ", ".join(f"{x:.2f}" for x in value["rounds"])
        print(f"{name:42} {value['median']:6.2f}x  (rounds: {rounds})")
    with open(os.path.join(options.out, "results.json"), "w") as out:
        json.dump({"seconds": options.seconds, "connections": options.connections, "rounds": options.rounds,
                   "results": results, "ratios": ratios}, out, indent=2)
    svg([r for r in results if r["round"] == 0], mixes, variants, os.path.join(options.out, "results.svg"))


if __name__ == "__main__":
    main()
