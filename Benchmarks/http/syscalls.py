#!/usr/bin/env python3
"""System calls per request of one app under one traffic mix.

Serves VARIANT of `http-app` on loopback with 256 warm sessions, drives it with wrk (2
threads, 16 connections) for SECONDS, and counts the server's file-syncs, file reads and
writes, lock calls (`fcntl`), futex calls and context switches with `perf stat` tracepoints
(which need no hardware counters), then prints each per request. Counts, unlike requests/s,
barely move with other load on the machine: they show where a durable store's request
differs from an in-memory one (a flush, a page read again after another connection's write).

    python3 syscalls.py [--binary PATH] [--seconds 4] [--event EVENT ...] VARIANT MIX

Needs `perf` (Debian package `linux-perf`) and root, or a `perf_event_paranoid` that allows it.
`--event` counts more events, such as SQLite statements stepped through a probe on the library
(`perf probe -x /usr/lib/x86_64-linux-gnu/libsqlite3.so.0 sqlite3_step`, then
`--event probe_libsqlite3:sqlite3_step`): how many requests reach SQLite at all.
`--threads` also prints, for each of the server's threads (from `/proc`), its CPU time and
its voluntary and involuntary context switches per request: which thread a cost lands on
(the cooperative pool running handlers, the event loops, SQLite's writer thread).
"""
import argparse
import glob
import os
import signal
import subprocess
import tempfile

import run

EVENTS = ["syscalls:sys_enter_fdatasync", "syscalls:sys_enter_pwrite64", "syscalls:sys_enter_pread64",
          "syscalls:sys_enter_fcntl", "syscalls:sys_enter_futex", "context-switches", "task-clock"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant")
    parser.add_argument("mix", choices=run.MIXES + ["write"])
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--binary", default=os.path.join(run.HERE, ".build-drivers-http/release/http-app"))
    parser.add_argument("--event", action="append", default=[], help="another perf event to count")
    parser.add_argument("--threads", action="store_true", help="CPU and context switches per request by thread")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="http-syscalls-") as directory:
        port = run.free_port()
        with open(os.path.join(directory, "server.log"), "w") as log:
            server = subprocess.Popen([arguments.binary, arguments.variant, str(port), os.path.join(directory, "sessions.db")],
                                      stdout=log, stderr=subprocess.STDOUT)
            try:
                run.wait_for_port(port, server)
                name = run.cookie_name(arguments.variant)
                cookies = os.path.join(directory, "cookies.txt")
                with open(cookies, "w") as file:
                    file.write("\n".join(run.login(port, name) for _ in range(run.WARM_SESSIONS)) + "\n")
                counts = os.path.join(directory, "perf.txt")
                before = thread_counts(server.pid)
                perf = subprocess.Popen(["perf", "stat", "-x", ",", "-e", ",".join(EVENTS + arguments.event), "-p", str(server.pid), "-o", counts],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                output = subprocess.run(
                    ["wrk", "-t2", "-c16", f"-d{arguments.seconds}s", "-s", os.path.join(run.HERE, "sessions.lua"),
                     f"http://127.0.0.1:{port}", "--", arguments.mix, cookies, name, "2"],
                    capture_output=True, text=True, check=True).stdout
                after = thread_counts(server.pid)
                perf.send_signal(signal.SIGINT)
                # perf stat writes its counts and ends on the interrupt it was sent.
                if perf.wait() not in (0, -signal.SIGINT, 128 + signal.SIGINT):
                    raise RuntimeError(f"perf stat exited with {perf.returncode} (is perf installed and allowed?)")
            finally:
                server.send_signal(signal.SIGINT)
                server.wait()
        result = next(line for line in output.splitlines() if line.startswith("RESULT"))
        requests = int(result.split('"requests": ')[1].split(",")[0])
        print(f"{arguments.variant} {arguments.mix}: {requests:,} requests")
        with open(counts) as file:
            for line in file:
                fields = line.strip().split(",")
                if len(fields) < 3 or line.startswith("#"):
                    continue
                value, event = fields[0], fields[2]
                if value in ("<not counted>", "<not supported>"):
                    raise RuntimeError(f"perf could not count {event}")
                per_request = float(value) / requests
                unit = " ms" if event == "task-clock" else ""
                print(f"  {event.replace('syscalls:sys_enter_', ''):18} {per_request:10.4f}{unit} per request")
        if arguments.threads:
            print_threads(before, after, requests)


def thread_counts(pid):
    """Each thread's name, CPU clock ticks (user + system) and voluntary and involuntary
    context switches, by thread id."""
    counts = {}
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            with open(os.path.join(task, "comm")) as file:
                name = file.read().strip()
            with open(os.path.join(task, "stat")) as file:
                fields = file.read().rsplit(")", 1)[1].split()
            with open(os.path.join(task, "status")) as file:
                status = dict(line.split(":", 1) for line in file if ":" in line)
        except FileNotFoundError:
            continue  # The thread ended between the listing and the read.
        ticks = int(fields[11]) + int(fields[12])  # utime and stime, fields 14 and 15 of stat
        counts[os.path.basename(task)] = (name, ticks, int(status["voluntary_ctxt_switches"]),
                                          int(status["nonvoluntary_ctxt_switches"]))
    return counts


def print_threads(before, after, requests):
    """Per request, for each thread that ran during the traffic: CPU µs and context switches."""
    tick = 1_000_000 / os.sysconf("SC_CLK_TCK")
    rows = []
    for tid, (name, ticks, voluntary, involuntary) in after.items():
        _, ticks0, voluntary0, involuntary0 = before.get(tid, (name, 0, 0, 0))
        rows.append((name, tid, (ticks - ticks0) * tick / requests, (voluntary - voluntary0) / requests,
                     (involuntary - involuntary0) / requests))
    print("  threads (CPU µs, voluntary and involuntary switches per request; a thread without")
    print("  a name of its own shows its starter's):")
    for name, tid, cpu, voluntary, involuntary in sorted(rows, key=lambda row: -row[2]):
        if cpu > 0 or voluntary > 0 or involuntary > 0:
            print(f"    {name:18} {tid:>8} {cpu:8.1f} µs {voluntary:8.3f} {involuntary:8.3f}")


if __name__ == "__main__":
    main()
