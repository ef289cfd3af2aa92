"""Benchmark: a snapshot's upload, 1 GiB of disk into the image API.

Starts ``twistd -n compute-all`` (its image API on loopback, images
stored under its state directory) through the integration-test harness,
writes a ``--size-mib`` (1024) qcow2-sized file of random data, creates
a queued image and streams the file into it with the agent's own image
client (:class:`twisted_compute.compute.image_client.ImageClient`: the
file read in 1 MiB chunks in a thread pool, hashed as it goes, the
checksum checked against the image API's afterwards) on this process's
reactor.  It prints the MB/s of the upload, the peak RSS of this process
(the agent's side: what the upload held in memory) before and after it,
the peak RSS of the compute-all process (the image API's side), and the
command that reproduces the run.

    .venv/bin/python bench/snapshot.py [--size-mib 1024] [--runs 1]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from tests.integration.harness import ADMIN, TwistdProcess  # noqa: E402

MiB = 1 << 20


def peak_rss_mib(pid: int | None = None) -> float:
    """VmHWM of ``pid`` (this process when None), in MiB."""
    if pid is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def write_disk(path: str, size_mib: int) -> None:
    block = os.urandom(MiB)
    with open(path, "wb") as handle:
        for n in range(size_mib):
            # not all alike, so nothing on the way can compress it
            handle.write(block[n % 997:] + block[:n % 997])


def upload_once(proc: TwistdProcess, path: str) -> tuple[float, dict]:
    from twisted.internet import defer, reactor
    from twisted.python.threadpool import ThreadPool

    from twisted_compute.compute.image_client import ImageClient

    response = proc.post("/v2/images", {
        "name": "bench-snapshot-" + os.urandom(3).hex(),
        "visibility": "private"}, api="image", token=ADMIN)
    assert response.code == 201, response
    image_id = response.json["id"]
    pool = ThreadPool(minthreads=1, maxthreads=2, name="bench-io")
    pool.start()
    client = ImageClient(proc.url("image"), ADMIN, reactor, pool=pool,
                         timeout=600)
    result: dict = {}

    async def run():
        started = time.monotonic()
        try:
            result["image"] = await client.upload(image_id, path, "qcow2")
        finally:
            result["seconds"] = time.monotonic() - started
            reactor.stop()

    reactor.callWhenRunning(lambda: defer.ensureDeferred(run()).addErrback(
        lambda f: result.__setitem__("error", f)))
    reactor.run()
    pool.stop()
    if "error" in result:
        result["error"].raiseException()
    return result["seconds"], result["image"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args(argv)
    proc = TwistdProcess(
        role="compute-all", apis=("osapi_compute", "image"),
        options={"DEFAULT": {"host": "bench-snap-" + os.urandom(3).hex()},
                 "glance": {"image_size_cap": 1 << 40}})
    try:
        proc.start()
        path = os.path.join(proc.directory, "disk.qcow2")
        write_disk(path, args.size_mib)
        before = peak_rss_mib()
        seconds, image = upload_once(proc, path)
        after = peak_rss_mib()
        server = peak_rss_mib(proc.pid)
    finally:
        proc.stop()
        proc.cleanup()
    size = args.size_mib * MiB
    assert image["size"] == size, image
    print(f"uploaded {args.size_mib} MiB in {seconds:.2f} s: "
          f"{size / MiB / seconds:.1f} MiB/s "
          f"(checksum {image['checksum']} verified)")
    print(f"agent side (this process) peak RSS: {before:.1f} MiB before "
          f"the upload, {after:.1f} MiB after")
    print(f"image API (compute-all) peak RSS: {server:.1f} MiB")
    print("command: .venv/bin/python bench/snapshot.py "
          f"--size-mib {args.size_mib}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
