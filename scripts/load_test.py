"""Load test for `ner-window serve`: concurrent clients against a local server (issue 18).

Starts the server itself (loopback only, a free port), runs bounded scenarios, stops it:

    cold start  spawn `ner-window serve` -> first answered POST /v1/tag, in seconds (median of 3)
    latency     --clients connections, each sending one sentence a request, for --duration s:
                requests/s, p50 / p99 latency, errors, server RSS before and after (after a
                warm-up of one pass over the sentences, which fills the server's bounded caches)
    soak        the same for --soak-requests requests: server RSS every 10% of the way
    batches     --batch-clients connections sending {"texts": [--batch-texts sentences]} to a
                server with --batch-workers workers, for --batch-duration s: tokens/s

Every loop is bounded in requests and in time, every request has a timeout, and only
127.0.0.1 is ever contacted.  The sentences are the bundled corpus's (data/train.txt).

On 2 cores the client must not starve the server: with --pin (the default where there
are 2 CPUs or more) the latency and soak servers run on CPU 0 and this client on CPU 1;
the batch server's two workers get both CPUs and the client (a few large requests, its
answers not parsed) shares them.  The client's own CPU time is reported with each scenario.

    .venv/bin/python scripts/load_test.py --model runs/base                  # the issue's targets
    .venv/bin/python scripts/load_test.py --model runs/base --format json
    .venv/bin/python scripts/load_test.py --model runs/base --quick          # seconds, for the tests

Targets (issue 18): 32 clients for 30 s with zero errors and p99 <= 50 ms; server RSS flat
over 100,000 requests; batches >= 200k tokens/s with --workers 2; cold start <= 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # the only address this script ever talks to
TIMEOUT = 10.0  # seconds for one request before it counts as an error
WARMUP_SECONDS = 30.0  # at most, for the warm-up before the latency and soak measurements


def corpus_sentences(path: Path = ROOT / "data" / "train.txt") -> list[str]:
    out, cur = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("-DOCSTART-"):
            continue
        if line.strip():
            cur.append(line.split()[0])
        elif cur:
            out.append(" ".join(cur))
            cur = []
    return out + ([" ".join(cur)] if cur else [])


# ---------------------------------------------------------------------------
# The server process
# ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def post_once(port: int, body: bytes, timeout: float = 1.0) -> int:
    """The status of one POST /v1/tag on a fresh connection (blocking; for start-up polling)."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(request_bytes(body))
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return int(data.split(b" ", 2)[1])


def start_server(model: str, workers: int, cpus: set[int] | None, timeout: float = 30.0):
    """(process, port, seconds from spawn to the first answered POST /v1/tag)."""
    port = free_port()
    cmd = [sys.executable, "-m", "ner_window.cli", "serve", "--model", model, "--host", HOST, "--port", str(port),
           "--workers", str(workers)]
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=pin,
                            start_new_session=True)
    body = json.dumps({"text": "museums in Paris are amazing"}).encode()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"load_test: the server exited {proc.returncode}: {proc.stderr.read().decode()}")
        try:
            if post_once(port, body) == 200:
                return proc, port, time.perf_counter() - t0
        except OSError:
            time.sleep(0.005)
    stop_server(proc)
    raise SystemExit(f"load_test: the server did not answer within {timeout} s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (uvicorn's workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    return tree


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, in MB."""
    total = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its descendants so far."""
    ticks = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------
# The client: HTTP/1.1 keep-alive connections on one asyncio loop
# ---------------------------------------------------------------------------


def request_bytes(body: bytes, close: bool = False) -> bytes:
    """POST /v1/tag; ``close``: a new connection for each request (Connection: close)."""
    return (f"POST /v1/tag HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"{'Connection: close' + chr(13) + chr(10) if close else ''}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length)


async def client(port: int, requests: list[bytes], stop: dict, out: dict, check, start: int | None = None) -> None:
    """One client sending ``requests`` round-robin from ``start`` [random] until ``stop`` says so, on one
    keep-alive connection (or a new one per request when the requests say Connection: close)."""
    reader = writer = None
    i = random.randrange(len(requests)) if start is None else start
    while time.perf_counter() < stop["deadline"] and stop["sent"] < stop["max"]:
        stop["sent"] += 1
        req = requests[i % len(requests)]
        i += 1
        t0 = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), TIMEOUT)
            writer.write(req)
            status, body = await asyncio.wait_for(read_response(reader), TIMEOUT)
            if status != 200 or not check(body):
                raise ValueError(f"HTTP {status}")
            out["latency"].append(time.perf_counter() - t0)
            out["answers"] += 1
            if b"Connection: close" in req[:200]:
                writer.close()
                reader = writer = None
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
            out["errors"] += 1
            out["error_kinds"][type(e).__name__] = out["error_kinds"].get(type(e).__name__, 0) + 1
            if writer is not None:
                writer.close()
            reader = writer = None
        if stop.get("on_answer"):
            stop["on_answer"](out["answers"])
    if writer is not None:
        writer.close()


def run_clients(port: int, requests: list[bytes], clients: int, duration: float, max_requests: int,
                check=lambda body: body[:1] == b"{", on_answer=None, spread: bool = False) -> dict:
    """Run ``clients`` connections for at most ``duration`` s and ``max_requests`` requests in all;
    spread: client k starts at request k·n/clients (so n requests send each one about once), else at random."""
    out = {"latency": [], "answers": 0, "errors": 0, "error_kinds": {}}
    stop = {"deadline": time.perf_counter() + duration, "sent": 0, "max": max_requests, "on_answer": on_answer}
    starts = [k * len(requests) // clients if spread else None for k in range(clients)]

    async def main():
        await asyncio.gather(*(client(port, requests, stop, out, check, start) for start in starts))

    t0, c0 = time.perf_counter(), time.process_time()
    asyncio.run(main())
    out["seconds"] = time.perf_counter() - t0
    out["client_cpu_seconds"] = time.process_time() - c0
    return out


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100])."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * len(s) + 0.5)) - 1))]


def summary(out: dict) -> dict:
    lat = out["latency"]
    return {
        "requests": out["answers"] + out["errors"], "answered": out["answers"], "errors": out["errors"],
        "error_kinds": out["error_kinds"], "seconds": round(out["seconds"], 3),
        "requests_per_s": round(out["answers"] / out["seconds"], 1),
        "p50_ms": round(1000 * percentile(lat, 50), 2), "p90_ms": round(1000 * percentile(lat, 90), 2),
        "p99_ms": round(1000 * percentile(lat, 99), 2), "max_ms": round(1000 * max(lat, default=float("nan")), 2),
        "client_cpu_seconds": round(out["client_cpu_seconds"], 2),
    }


# ---------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------


def cold_start(model: str, workers: int, repeat: int) -> dict:
    times = []
    for _ in range(repeat):
        proc, _, seconds = start_server(model, workers, None)
        stop_server(proc)
        times.append(seconds)
    return {"workers": workers, "seconds": [round(t, 3) for t in times], "median_s": round(statistics.median(times), 3)}


def sentence_requests(sentences: list[str]) -> list[bytes]:
    return [request_bytes(json.dumps({"text": s}).encode()) for s in sentences]


def latency_scenario(model: str, args, sentences: list[str], server_cpus, max_requests: int, duration: float,
                     samples: int = 0) -> dict:
    proc, port, _ = start_server(model, args.workers, server_cpus)
    try:
        rss_start = tree_rss_mb(proc.pid)  # loaded, before any request
        reqs = sentence_requests(sentences)
        # warm-up: first-call costs, and one pass over the sentences, after which the server's bounded caches
        # (the slot rows and ids of every word they use) are full: RSS measured from here shows leaks only
        warm = run_clients(port, reqs, args.clients, WARMUP_SECONDS, args.warmup_requests or len(reqs), spread=True)
        rss_before = tree_rss_mb(proc.pid)
        cpu0 = tree_cpu_seconds(proc.pid)
        series = []
        step = max(1, max_requests // samples) if samples else 0

        def on_answer(n):
            if step and n % step == 0 and len(series) < samples:
                series.append([n, round(tree_rss_mb(proc.pid), 1)])

        out = run_clients(port, reqs, args.clients, duration, max_requests, on_answer=on_answer)
        server_cpu = tree_cpu_seconds(proc.pid) - cpu0
        rss_after = tree_rss_mb(proc.pid)
    finally:
        stop_server(proc)
    res = summary(out)
    res.update(clients=args.clients, workers=args.workers, server_cpus=sorted(server_cpus) if server_cpus else "all",
               rss_before_mb=round(rss_before, 1), rss_after_mb=round(rss_after, 1),
               rss_growth_mb=round(rss_after - rss_before, 1), server_cpus_used=round(server_cpu / out["seconds"], 2),
               warmup_requests=warm["answers"], rss_at_start_mb=round(rss_start, 1))
    if samples:
        res["rss_series_mb"] = series
    return res


def batch_scenario(model: str, args, sentences: list[str]) -> dict:
    proc, port, _ = start_server(model, args.batch_workers, None)
    try:
        rng = random.Random(0)
        batches, tokens = [], []
        for _ in range(8):  # 8 different batches; each one's tokens counted from the server's own answer
            texts = rng.choices(sentences, k=args.batch_texts)
            req = request_bytes(json.dumps({"texts": texts}).encode(), close=args.batch_connections == "new")
            batches.append(req)
            tokens.append(sum(len(r["tokens"]) for r in json.loads(_post_body(port, req))["results"]))
        per_request = statistics.mean(tokens)  # the clients send the 8 batches round-robin
        cpu0 = tree_cpu_seconds(proc.pid)
        out = run_clients(port, batches, args.batch_clients, args.batch_duration, 1_000_000,
                          check=lambda body: body[:12] == b'{"results":[')
        server_cpu = tree_cpu_seconds(proc.pid) - cpu0
        rss = tree_rss_mb(proc.pid)
    finally:
        stop_server(proc)
    res = summary(out)
    res.update(workers=args.batch_workers, clients=args.batch_clients, texts_per_request=args.batch_texts,
               connections=args.batch_connections,
               tokens_per_request=round(per_request), body_kb=round(statistics.mean(len(b) for b in batches) / 1024),
               tokens_per_s=round(out["answers"] * per_request / out["seconds"]), server_rss_mb=round(rss, 1),
               # how many CPUs the server had: below the worker count, something else held a CPU
               server_cpus_used=round(server_cpu / out["seconds"], 2),
               tokens_per_server_cpu_s=round(out["answers"] * per_request / max(server_cpu, 1e-9)))
    return res


def _post_body(port: int, req: bytes) -> bytes:
    async def one():
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(req)
        _, body = await asyncio.wait_for(read_response(reader), TIMEOUT)
        writer.close()
        return body

    return asyncio.run(one())


# ---------------------------------------------------------------------------


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = [
        f"`scripts/load_test.py` on {m['cpus']} CPUs (1-min load average {m['load_average_before']:.2f} before, "
        f"{m['load_average_after']:.2f} after), model {res['model']}; latency/soak pinned: {res['pinned']}",
        "",
        "| scenario | requests | errors | requests/s | p50 ms | p99 ms | tokens/s | server RSS MB | server CPUs used "
        "| client CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for name in ("latency", "soak"):
        if name in res:
            r = res[name]
            lines.append(f"| {name}: {r['clients']} clients × 1 sentence, {r['workers']} worker | {r['requests']:,} | "
                         f"{r['errors']} | {r['requests_per_s']:,.0f} | {r['p50_ms']} | {r['p99_ms']} | | "
                         f"{r['rss_before_mb']} → {r['rss_after_mb']} | {r['server_cpus_used']} | {r['client_cpu_seconds']} |")
    if "batches" in res:
        b = res["batches"]
        lines.append(f"| batches: {b['clients']} clients × {b['texts_per_request']} texts "
                     f"(~{b['tokens_per_request']:,} tokens, {b['body_kb']} KB), {b['workers']} workers | "
                     f"{b['requests']:,} | {b['errors']} | {b['requests_per_s']:,.1f} | {b['p50_ms']} | {b['p99_ms']} | "
                     f"{b['tokens_per_s']:,} | {b['server_rss_mb']} | {b['server_cpus_used']} | {b['client_cpu_seconds']} |")
    lines.append("")
    for key in ("cold_start", "cold_start_batch_workers"):
        if key in res:
            c = res[key]
            lines.append(f"cold start to the first answered request, {c['workers']} worker(s): {c['median_s']} s "
                         f"(median of {c['seconds']})")
    if res.get("soak", {}).get("rss_series_mb"):
        lines.append("soak RSS (answers, MB): " + ", ".join(f"{n:,}: {mb}" for n, mb in res["soak"]["rss_series_mb"]))
    lines.append("targets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in res["targets"].items()))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.environ.get("NER_WINDOW_MODEL", "runs/latest"))
    ap.add_argument("--workers", type=int, default=1, help="server workers for the latency and soak scenarios")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--requests", type=int, default=1_000_000, help="at most this many in the latency scenario")
    ap.add_argument("--soak-requests", type=int, default=100_000)
    ap.add_argument("--soak-time-limit", type=float, default=300.0)
    ap.add_argument("--batch-workers", type=int, default=2)
    ap.add_argument("--batch-clients", type=int, default=4)
    ap.add_argument("--batch-texts", type=int, default=1000)
    ap.add_argument("--batch-duration", type=float, default=20.0)
    ap.add_argument("--batch-connections", choices=["new", "keep-alive"], default="new",
                    help="a new connection per batch (the kernel then hands it to a free worker), or one "
                         "keep-alive connection per client (pinned to the worker that accepted it)")
    ap.add_argument("--cold-repeat", type=int, default=3)
    ap.add_argument("--pin", choices=["auto", "yes", "no"], default="auto",
                    help="latency/soak: server on CPU 0, client on CPU 1 [auto: when there are 2+ CPUs]")
    ap.add_argument("--scenarios", default="cold,batches,latency,soak",
                    help="comma-separated subset of cold,batches,latency,soak [all]")
    ap.add_argument("--warmup-requests", type=int, default=0,
                    help="requests before the latency and soak measurements [0: one pass over the sentences]")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds in all (for the tests)")
    ap.add_argument("--format", choices=["text", "json"], default="text")
    args = ap.parse_args(argv)
    if args.quick:
        args.clients, args.duration, args.requests, args.warmup_requests = 4, 1.0, 400, 200
        args.soak_requests, args.soak_time_limit = 400, 10.0
        args.batch_clients, args.batch_texts, args.batch_duration, args.cold_repeat = 2, 50, 1.0, 1
    model = str(Path(args.model).resolve())
    cpus = sorted(os.sched_getaffinity(0))
    pinned = args.pin == "yes" or (args.pin == "auto" and len(cpus) >= 2)
    server_cpus = {cpus[0]} if pinned else None
    sentences = corpus_sentences()

    wanted = set(args.scenarios.split(","))
    unknown = wanted - {"cold", "batches", "latency", "soak"}
    if unknown:
        ap.error(f"unknown scenario {', '.join(sorted(unknown))}; use cold, batches, latency, soak")

    res = {"model": model, "pinned": f"server on CPU {cpus[0]}, client on CPU {cpus[1]}" if pinned else "no",
           "machine": {"cpus": len(cpus), "python": platform.python_version(), "platform": platform.platform(),
                       "load_average_before": os.getloadavg()[0]}}
    if "cold" in wanted:
        res["cold_start"] = cold_start(model, args.workers, args.cold_repeat)
        if args.batch_workers != args.workers:
            res["cold_start_batch_workers"] = cold_start(model, args.batch_workers, args.cold_repeat)
    if "batches" in wanted:
        res["batches"] = batch_scenario(model, args, sentences)
    if pinned:
        os.sched_setaffinity(0, {cpus[1]})
    if "latency" in wanted:
        res["latency"] = latency_scenario(model, args, sentences, server_cpus, args.requests, args.duration)
    if "soak" in wanted:
        res["soak"] = latency_scenario(model, args, sentences, server_cpus, args.soak_requests,
                                       args.soak_time_limit, samples=10)
    os.sched_setaffinity(0, set(cpus))
    # the 1-minute load average includes this run's own server and client (about 2 on 2 CPUs)
    res["machine"]["load_average_after"] = os.getloadavg()[0]
    checks = {
        "latency: zero errors": ("latency", lambda r: r["errors"] == 0),
        "latency: p99 <= 50 ms": ("latency", lambda r: r["p99_ms"] <= 50),
        "soak: zero errors": ("soak", lambda r: r["errors"] == 0),
        "batches: >= 200k tokens/s": ("batches", lambda r: r["tokens_per_s"] >= 200_000),
        "cold start <= 2 s": ("cold_start", lambda r: r["median_s"] <= 2.0),
        "cold start with the batch workers <= 2 s": ("cold_start_batch_workers", lambda r: r["median_s"] <= 2.0),
    }
    res["targets"] = {name: ok(res[key]) for name, (key, ok) in checks.items() if key in res}
    print(json.dumps(res, indent=1) if args.format == "json" else markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
