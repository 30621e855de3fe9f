#!/usr/bin/env python3
"""qisync against its peers on the same values, on the same machine, in the same run.

The same generated initiatives (title, team, aim: NHS text with £, °C, accents and Welsh place
names) go through:

  plain SQLite insert      the floor: one transaction, one prepared statement (Python's sqlite3,
                           WAL, synchronous=NORMAL as qisync runs)
  SQLite session extension record a changeset of the same inserts, then apply it to an empty
                           database (through apsw, which bundles its own SQLite)
  Yrs (pycrdt)             the same records as map entries in a Y document: encode the update,
                           apply it to a fresh document
  qisync                   a script of `initiative add` lines through `qisync shell`; the hub's
                           bundle for a new ward (`bundle export`), its import into an empty
                           ward (`bundle import`); a full sync over mutual TLS into an empty ward
                           (`serve` and `sync --pull`, two processes on loopback)

Each path runs in a child process of its own, timed from outside (wall time) with its peak
resident memory (wait4), several times; medians are reported. Bytes are what each would ship:
the changeset, the Y update, the qisync bundle file and sync frames (wire bytes; the TLS
record overhead is not counted), raw and compressed with zlib level 6.

Run it with tools/bench/compare.sh (it installs apsw and pycrdt into a virtual environment
and builds qisync in release mode first).
"""
import argparse
import json
import os
import random
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import zlib

WARDS = ["Ward 7b", "Ysbyty Gwynedd AMU", "Llandudno ED", "Café & discharge lounge", "Maternity, Glan Clwyd", "Ysbyty Maelor, Wrecsam"]
TOPICS = ["falls", "pressure ulcers", "sepsis screening", "discharge before noon", "hydration at 37°C", "naïve delirium screening"]


def values(n):
    """Seeded rows: (id bytes, title, team, aim)."""
    rng = random.Random(20261130)
    rows = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        rows.append((rng.randbytes(16), f"Reduce {topic} #{i}", WARDS[(i // 6) % len(WARDS)],
                     f"Cut {TOPICS[(i // 3) % len(TOPICS)]} by {10 + i % 40}% by March; £{i % 900} a month, {rng.randint(1, 99)} beds"))
    return rows


def raw_bytes(rows):
    return sum(len(t.encode()) + len(m.encode()) + len(a.encode()) for _, t, m, a in rows)


# ---- children: each runs one path and prints JSON on stdout ----

def child_plain(n, work):
    rows = values(n)
    path = os.path.join(work, "plain.sqlite")
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    con.execute("CREATE TABLE initiative (id BLOB PRIMARY KEY, title TEXT, team TEXT, aim TEXT)")
    start = time.perf_counter()
    con.execute("BEGIN")
    con.executemany("INSERT INTO initiative VALUES (?, ?, ?, ?)", rows)
    con.execute("COMMIT")
    seconds = time.perf_counter() - start
    con.close()
    return {"seconds": seconds, "file": os.path.getsize(path) + (os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else 0)}


def child_session(n, work, phase):
    import apsw
    rows = values(n)
    changeset_path = os.path.join(work, "changeset.bin")
    if phase == "record":
        con = apsw.Connection(os.path.join(work, "session-source.sqlite"))
        con.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL")
        con.execute("CREATE TABLE initiative (id BLOB PRIMARY KEY, title TEXT, team TEXT, aim TEXT)")
        start = time.perf_counter()
        session = apsw.Session(con, "main")
        session.attach("initiative")
        with con:
            con.executemany("INSERT INTO initiative VALUES (?, ?, ?, ?)", rows)
        changeset = session.changeset()
        seconds = time.perf_counter() - start
        with open(changeset_path, "wb") as f:
            f.write(changeset)
        return {"seconds": seconds, "bytes": len(changeset), "zlib6": len(zlib.compress(changeset, 6))}
    con = apsw.Connection(os.path.join(work, f"session-target-{os.getpid()}.sqlite"))
    con.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL")
    con.execute("CREATE TABLE initiative (id BLOB PRIMARY KEY, title TEXT, team TEXT, aim TEXT)")
    with open(changeset_path, "rb") as f:
        changeset = f.read()
    start = time.perf_counter()
    with con:
        apsw.Changeset.apply(changeset, con)
    seconds = time.perf_counter() - start
    count = con.execute("SELECT count(*) FROM initiative").fetchall()[0][0]
    assert count == n, count
    return {"seconds": seconds}


def child_yrs(n, work, phase):
    import pycrdt
    update_path = os.path.join(work, "y-update.bin")
    if phase == "encode":
        rows = values(n)
        start = time.perf_counter()
        doc = pycrdt.Doc()
        initiatives = doc.get("initiatives", type=pycrdt.Map)
        with doc.transaction():
            for key, title, team, aim in rows:
                initiatives[key.hex()] = pycrdt.Map({"title": title, "team": team, "aim": aim})
        update = doc.get_update()
        seconds = time.perf_counter() - start
        with open(update_path, "wb") as f:
            f.write(update)
        return {"seconds": seconds, "bytes": len(update), "zlib6": len(zlib.compress(update, 6))}
    with open(update_path, "rb") as f:
        update = f.read()
    start = time.perf_counter()
    doc = pycrdt.Doc()
    doc.apply_update(update)
    count = len(doc.get("initiatives", type=pycrdt.Map))
    seconds = time.perf_counter() - start
    assert count == n, count
    return {"seconds": seconds}


# ---- the parent ----

def timed(command, stdin=None):
    """Runs a command; returns (wall seconds, peak resident MB, stdout).

    Peak memory comes from GNU time, which starts the command itself: a child forked (or
    vforked) from this Python process would count this process's own peak as its own.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile() as peak:
        command = ["/usr/bin/time", "-f", "%M", "-o", peak.name, *command]
        actions = [(os.POSIX_SPAWN_DUP2, out.fileno(), 1), (os.POSIX_SPAWN_DUP2, err.fileno(), 2)]
        if stdin is not None:
            actions.append((os.POSIX_SPAWN_DUP2, stdin.fileno(), 0))
        else:
            actions.append((os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0))
        executable = command[0]
        start = time.perf_counter()
        pid = os.posix_spawn(executable, command, os.environ, file_actions=actions)
        _, status, usage = os.wait4(pid, 0)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise SystemExit(f"{' '.join(command)} failed ({code}): {err.read().decode(errors='replace')[-2000:]}")
        return seconds, int(open(peak.name).read().split()[-1]) / 1024, out.read().decode(errors="replace")


def python_child(kind, n, work, phase=""):
    seconds, peak, out = timed([sys.executable, __file__, "--child", kind, "--phase", phase, "--n", str(n), "--work", work])
    result = json.loads(out)
    result["wall"] = seconds
    result["peak"] = peak
    return result


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Qisync:
    def __init__(self, binary, work):
        self.binary, self.work = binary, work

    def run(self, *arguments, stdin=None):
        return timed([self.binary, *arguments], stdin=stdin)

    def hub(self, name):
        home = os.path.join(self.work, name)
        out = self.run("init", "--trust", "RXH", "--trust-name", "Bench Trust", "--site", "hub", "--home", home)[2]
        fingerprint = re.search(r"--join ([0-9A-F-]+)", out).group(1)
        return home, fingerprint

    def ward(self, hub, fingerprint, name):
        home = os.path.join(self.work, name)
        out = self.run("init", "--trust", "RXH", "--site", name, "--join", fingerprint, "--home", home)[2]
        request = re.search(r"qisync-enrol-request:\S+", out).group(0)
        self.run("enrol", request, "--home", hub)
        return home


def median(results, key):
    return statistics.median(r[key] for r in results)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--qisync", default=os.path.join(os.path.dirname(__file__), "../../.build/release/qisync"))
    parser.add_argument("--child")
    parser.add_argument("--phase", default="")
    parser.add_argument("--n", type=int)
    parser.add_argument("--work")
    args = parser.parse_args()
    if args.child:
        result = {"plain": lambda: child_plain(args.n, args.work),
                  "session": lambda: child_session(args.n, args.work, args.phase),
                  "yrs": lambda: child_yrs(args.n, args.work, args.phase)}[args.child]()
        print(json.dumps(result))
        return

    binary = os.path.abspath(args.qisync)
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"no qisync at {binary}: build it with swift build -c release --product qisync")
    print(f"qisync-bench compare: {args.runs} runs of each, medians; machine: {os.cpu_count()} cores, "
          f"{os.uname().sysname} {os.uname().release}; Python {sys.version.split()[0]}, sqlite3 {sqlite3.sqlite_version}")
    for n in [int(s) for s in args.sizes.split(",")]:
        rows = values(n)
        raw = raw_bytes(rows)
        results = {}
        with tempfile.TemporaryDirectory(prefix="qisync-compare-") as work:
            for run in range(args.runs):
                trial = os.path.join(work, f"run{run}")
                os.makedirs(trial)
                results.setdefault("plain", []).append(python_child("plain", n, trial))
                results.setdefault("session record", []).append(python_child("session", n, trial, "record"))
                results.setdefault("session apply", []).append(python_child("session", n, trial, "apply"))
                results.setdefault("yrs encode", []).append(python_child("yrs", n, trial, "encode"))
                results.setdefault("yrs apply", []).append(python_child("yrs", n, trial, "apply"))

                q = Qisync(binary, trial)
                hub, fingerprint = q.hub("hub")
                script = os.path.join(trial, "script.txt")
                with open(script, "w", encoding="utf-8") as f:
                    for _, title, team, aim in rows:
                        quote = lambda text: "'" + text.replace("'", "'\\''") + "'"
                        f.write(f"initiative add --title {quote(title)} --team {quote(team)} --aim {quote(aim)}\n")
                with open(script, "rb") as stdin:
                    seconds, peak, _ = q.run("shell", "--home", hub, stdin=stdin)
                results.setdefault("qisync script", []).append({"wall": seconds, "peak": peak})
                hub_file = sum(os.path.getsize(os.path.join(hub, f)) for f in ("replica.sqlite", "replica.sqlite-wal") if os.path.exists(os.path.join(hub, f)))
                results.setdefault("qisync file", []).append({"bytes": hub_file})

                ward = q.ward(hub, fingerprint, "bundle-ward")
                bundle = os.path.join(trial, "ward.bundle")
                seconds, peak, _ = q.run("bundle", "export", bundle, "--for", "RXH/bundle-ward", "--all", "--home", hub)
                size = os.path.getsize(bundle)
                with open(bundle, "rb") as f:
                    content = f.read()
                results.setdefault("qisync bundle export", []).append({"wall": seconds, "peak": peak, "bytes": size, "zlib6": len(zlib.compress(content, 6))})
                seconds, peak, _ = q.run("bundle", "import", bundle, "--home", ward)
                results.setdefault("qisync bundle import", []).append({"wall": seconds, "peak": peak})

                synced = q.ward(hub, fingerprint, "sync-ward")
                port = free_port()
                server = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--home", hub],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    for _ in range(100):
                        try:
                            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                            break
                        except OSError:
                            time.sleep(0.05)
                    seconds, peak, out = q.run("sync", f"127.0.0.1:{port}", "--pull", "--json", "--home", synced)
                finally:
                    server.terminate()
                    server.wait(timeout=30)
                summary = json.loads(out[:out.rindex("}") + 1])
                results.setdefault("qisync sync over TLS", []).append({"wall": seconds, "peak": peak,
                                                                       "bytes": summary["wire_bytes_in"] + summary["wire_bytes_out"]})

        floor = median(results["plain"], "wall")
        floor_inner = median(results["plain"], "seconds")
        print()
        print(f"### {n:,} initiatives, {raw / 1e6:.1f} MB of raw values")
        print()
        print("| path | wall time (process) | ÷ plain insert | inside the process | peak memory | bytes | zlib-6 | bytes ÷ raw |")
        print("|---|---|---|---|---|---|---|---|")

        def row(name, key, note=""):
            rs = results[key]
            wall = median(rs, "wall") if "wall" in rs[0] else None
            inner = median(rs, "seconds") if "seconds" in rs[0] else None
            peak = median(rs, "peak") if "peak" in rs[0] else None
            size = median(rs, "bytes") if "bytes" in rs[0] else None
            z = median(rs, "zlib6") if "zlib6" in rs[0] else None
            cells = [name,
                     f"{wall:.2f} s" if wall is not None else "",
                     f"{wall / floor:.1f}×" if wall is not None else "",
                     f"{inner:.2f} s" if inner is not None else "",
                     f"{peak:.0f} MB" if peak is not None else "",
                     f"{size / 1e6:.2f} MB" if size is not None else "",
                     f"{z / 1e6:.2f} MB" if z is not None else "",
                     f"{(z or size) / raw * 100:.0f}%{note}" if size is not None else ""]
            print("| " + " | ".join(cells) + " |")

        row("plain SQLite insert (the floor)", "plain")
        row("session extension: record the changeset", "session record")
        row("session extension: apply to an empty database", "session apply")
        row("Yrs (pycrdt): build the document and encode", "yrs encode")
        row("Yrs (pycrdt): apply to a fresh document", "yrs apply")
        row("qisync: script of initiative add lines (qisync shell)", "qisync script")
        row("qisync: bundle export for a new ward", "qisync bundle export", " (the file is already deflated)")
        row("qisync: bundle import into an empty ward", "qisync bundle import")
        row("qisync: full sync over mutual TLS into an empty ward", "qisync sync over TLS", " (frames, deflated)")
        plain_file = median(results["plain"], "file")
        print(f"| qisync replica file ÷ plain table file | | | | | {median(results['qisync file'], 'bytes') / 1e6:.1f} MB ÷ {plain_file / 1e6:.1f} MB | | "
              f"{median(results['qisync file'], 'bytes') / plain_file:.1f}× |")
        print(f"\nplain insert inside its process: {floor_inner:.3f} s (the ratios above divide process wall times, "
              f"which include starting Python or qisync).")


if __name__ == "__main__":
    main()
