#!/usr/bin/env python3
"""Opens N collections on a running exar-db (one event each, over one connection, 100 in
flight) and prints the time per collection (wall, and the server's CPU), the server's threads,
open descriptors, RSS and the data folder's disk use; then does it again, reopening what the
cache of open collections closed.
    Benchmarks/many-collections.py PORT PID DATA_FOLDER N
Used by Benchmarks/many-collections.sh; figures in docs/BENCHMARKS.md."""
import os, socket, sys, time

port, pid, folder, count = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
sock = socket.create_connection(("127.0.0.1", port))
reader = sock.makefile("rb")

def lines(n):
    return [reader.readline().rstrip(b"\n").decode() for _ in range(n)]

def cpu_seconds():
    # utime and stime of the whole process (fields 14 and 15 of /proc/PID/stat), in seconds.
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def open_all(label):
    """Select and one Publish to every collection; returns the wall and server CPU seconds."""
    cpu_start = cpu_seconds()
    start = time.monotonic()
    chunk = 100
    for first in range(0, count, chunk):
        names = range(first, min(count, first + chunk))
        sock.sendall("".join(f"Select\tc{i}\nPublish\tt\t0\t{label} event of c{i}\n" for i in names).encode())
        answers = lines(2 * len(names))
        bad = [a for a in answers if a not in ("Selected",) and not a.startswith("Published\t")]
        if bad:
            sys.exit(f"unexpected answers: {bad[:3]}")
    return time.monotonic() - start, cpu_seconds() - cpu_start

elapsed, cpu = open_all("first")

def proc(path):
    with open(f"/proc/{pid}/{path}") as f:
        return f.read()

threads = len(os.listdir(f"/proc/{pid}/task"))
fds = len(os.listdir(f"/proc/{pid}/fd"))
rss = next(int(l.split()[1]) for l in proc("status").splitlines() if l.startswith("VmRSS:"))
allocated = apparent = 0
for root, _, files in os.walk(folder):
    for name in files:
        info = os.stat(os.path.join(root, name))
        allocated += info.st_blocks * 512
        apparent += info.st_size
print(f"collections={count} seconds={elapsed:.2f} per_collection_ms={1000 * elapsed / count:.2f} "
      f"server_cpu_per_collection_ms={1000 * cpu / count:.2f} "
      f"threads={threads} fds={fds} rss_mib={rss / 1024:.0f} disk_mib={allocated / 2**20:.1f} "
      f"disk_per_collection_kib={allocated / 1024 / count:.1f} apparent_gib={apparent / 2**30:.1f}")
# Again: collections the cache closed (past max_open_collections) are reopened from their files.
elapsed, cpu = open_all("second")
print(f"second pass (reopening what the cache closed): per_collection_ms={1000 * elapsed / count:.2f} "
      f"server_cpu_per_collection_ms={1000 * cpu / count:.2f}")
