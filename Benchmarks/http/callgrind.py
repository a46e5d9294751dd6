#!/usr/bin/env python3
"""Instructions per request, counted by callgrind, for the SQLite and in-memory apps of `run.py`.

valgrind 3.19 dies (an internal SIGSEGV) when a program's main thread parks in
`dispatch_main`'s `sigsuspend`, as an async `main` does: that is what stopped it at the start
of the `http-app` server. `http-callgrind` waits on a semaphore instead, and drives the same
apps in process, without sockets or wrk: Hummingbird's through HummingbirdTesting's `.router`
client, Vapor's through the application's responder (its middleware and router, on one of
its event loops). For each variant and traffic mix it runs the
harness twice under `valgrind --tool=callgrind`, with a small and a large request count, on
a fresh SQLite file each time, and prints the difference of the two instruction totals over
the difference of the counts: one request's instructions, start-up and sign-ins cancelled.
Counts do not move with other load on the machine, so they judge a change where requests/s
cannot. The harness binary is copied without its DWARF sections (valgrind 3.19 cannot read
what Swift 6.3 emits); symbol names remain, so `callgrind_annotate` on the kept output files
(`--keep DIR`) shows where the instructions go.

    swift build -c release --scratch-path .build-drivers-http --product http-callgrind   # as run.py's http-app
    python3 callgrind.py [--variants vapor-store,vapor-store-typed,vapor-memory,hb-native,hb-store,hb-memory]
                         [--mixes read,mix,bots,unknown]
                         [--requests 200,1200] [--keep DIR]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
MIXES = ["read", "mix", "bots", "unknown"]
# Also accepted by --mixes: "write" (every request a counter increment), to look at saves alone.


def instructions(binary, variant, mix, requests, keep):
    directory = tempfile.mkdtemp(prefix="http-callgrind-")
    try:
        out = os.path.join(directory, "callgrind.out")
        database = os.path.join(directory, "sessions.db")
        result = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary, variant, mix, str(requests), database],
            capture_output=True, text=True)
        if result.returncode != 0:
            sys.stderr.write(result.stdout + result.stderr[-4000:])
            raise RuntimeError(f"{variant} {mix} {requests}: exit {result.returncode}")
        total = None
        with open(out) as data:
            for line in data:
                if line.startswith("summary:") or line.startswith("totals:"):
                    total = int(line.split()[1])
        if total is None:
            raise RuntimeError(f"{variant} {mix}: no totals in {out}")
        if keep:
            shutil.copy(out, os.path.join(keep, f"callgrind.{variant}.{mix}.{requests}"))
        return total
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="vapor-store,vapor-store-typed,vapor-memory,hb-native,hb-store,hb-memory")
    parser.add_argument("--mixes", default=",".join(MIXES))
    parser.add_argument("--requests", default="200,1200", help="the two request counts, small,large")
    parser.add_argument("--binary", default=os.path.join(HERE, ".build-drivers-http", "release", "http-callgrind"))
    parser.add_argument("--keep", help="directory to keep the callgrind output files in")
    arguments = parser.parse_args()
    small, large = (int(n) for n in arguments.requests.split(","))
    if arguments.keep:
        os.makedirs(arguments.keep, exist_ok=True)
    # valgrind 3.19 gives up on the DWARF Swift 6.3 writes: count on a copy without it.
    stripped = os.path.join(tempfile.mkdtemp(prefix="http-callgrind-bin-"), "http-callgrind")
    shutil.copy(arguments.binary, stripped)
    subprocess.run(["strip", "--strip-debug", stripped], check=True)
    rows = []
    for mix in arguments.mixes.split(","):
        for variant in arguments.variants.split(","):
            first = instructions(stripped, variant, mix, small, arguments.keep)
            second = instructions(stripped, variant, mix, large, arguments.keep)
            per_request = (second - first) / (large - small)
            rows.append((mix, variant, per_request))
            print(f"{mix:8} {variant:18} {per_request:10.0f} instructions/request", flush=True)
    print()
    print("| traffic | app | instructions/request |")
    print("|---|---|---:|")
    for mix, variant, per_request in rows:
        print(f"| {mix} | {variant} | {per_request:,.0f} |")


if __name__ == "__main__":
    main()
