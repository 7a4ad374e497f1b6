"""Load test: the Partnerships tab (5,000 partners), a settings list (1,000 items) and the page
of a run with 1,000 changes, served by gunicorn on loopback. Each page is first asked for by
one client, one request after the other (p50: the server's time for one page), then by
concurrent clients (throughput, p50/p95 latency, errors). Prints each figure with its target
(docs/design.md §10); exits non-zero on any error, and on a missed target unless
``--no-targets``.

    DATABASE_URL=postgres://… DJANGO_DEBUG=false \
        uv run python benchmarks/load_test.py --clients 20 --requests 400

Bounded in requests and in time; it only talks to 127.0.0.1 and removes its data afterwards.
The server keeps its database connections between requests (``DJANGO_CONN_MAX_AGE``), as the
production settings do.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
os.environ["DJANGO_DEBUG"] = "false"
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1")
os.environ.setdefault("DJANGO_CONN_MAX_AGE", "60")
PREFIX = "Load "
TAB = "tab"
#: (page, phase) → (what is measured, comparison, bound, unit); docs/design.md §10
TARGETS = {
    (TAB, "one"): ("p50", "<", 40.0, "ms"),
    (TAB, "many"): ("throughput", ">=", 60.0, "req/s"),
}


def setup_data(partners: int, items: int) -> tuple[str, str, int]:
    """Create a channel manager with partners and equipment, and a run that copied the
    equipment into one more partner; return (slug, session key, the run's pk)."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    from organizations.models import Membership, Organization
    from partnerships.models import Partnership
    from settings_sync import engine
    from settings_sync.cleanup import refresh_statistics
    from settings_sync.project.models import Equipment

    cleanup()
    helios = Organization.objects.create(name=f"{PREFIX}Helios", slug="load-helios")
    organizations = Organization.objects.bulk_create(
        Organization(name=f"{PREFIX}partner {n:05}", slug=f"load-partner-{n}")
        for n in range(partners)
    )
    Partnership.objects.bulk_create(
        Partnership(upstream=helios, downstream=o, data_sync_enabled=True) for o in organizations
    )
    Equipment.objects.bulk_create(
        Equipment(
            organization=helios,
            kind="module",
            manufacturer=f"Maker {n % 40}",
            model=f"Model {n}",
            unit_cost=250,
        )
        for n in range(items)
    )
    linked = Partnership.objects.create(
        upstream=helios,
        downstream=Organization.objects.create(name=f"{PREFIX}installer", slug="load-installer"),
        data_sync_enabled=True,
    )
    run = engine.run(linked, "link", categories=["equipment"])
    user, _ = get_user_model().objects.get_or_create(username="load-admin")
    Membership.objects.get_or_create(user=user, organization=helios, defaults={"role": "admin"})
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    refresh_statistics()  # the pages are measured as they run on a settled database
    return helios.slug, session.session_key, run.pk


def cleanup() -> None:
    from organizations.models import Organization
    from settings_sync.cleanup import delete_organizations

    delete_organizations(Organization.objects.filter(name__startswith=PREFIX))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(port: int, workers: int, threads: int) -> subprocess.Popen:
    process = subprocess.Popen(  # noqa: S603 (fixed arguments)
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
        start_new_session=True,  # its own process group: stopped with its workers
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=5)
            return process
        except OSError:  # not listening yet, or still starting (a first request is slow)
            time.sleep(0.2)
    process.kill()
    raise SystemExit("gunicorn did not start")


def stop(server: subprocess.Popen) -> None:
    """Stop gunicorn and every worker it started, even one still busy with a request."""
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def hammer(url: str, cookie: str, clients: int, requests: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def one(_: int) -> None:
        nonlocal errors
        if time.monotonic() > deadline:
            return
        request = urllib.request.Request(url, headers={"Cookie": f"sessionid={cookie}"})  # noqa: S310
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                response.read()
                ok = response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            ok = False
        took = time.perf_counter() - start
        with lock:
            latencies.append(took)
            if not ok:
                errors += 1

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one, range(requests)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "throughput": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p95": latencies[int(0.95 * (len(latencies) - 1))] * 1000,
        "errors": errors,
    }


def verdict(page: str, phase: str, result: dict, waived: bool) -> tuple[str, bool]:
    """The target beside a figure, and whether it was missed."""
    if (page, phase) not in TARGETS:
        return "", False
    figure, comparison, bound, unit = TARGETS[page, phase]
    value = result[figure]
    met = value < bound if comparison == "<" else value >= bound
    label = "met" if met else ("missed (waived)" if waived else "MISSED")
    return f"  target {figure} {comparison} {bound:g} {unit}: {label}", not met and not waived


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=400, help="Per page, concurrent.")
    parser.add_argument(
        "--single", type=int, default=40, help="Requests per page by one client (0: none)."
    )
    parser.add_argument("--seconds", type=float, default=120, help="Time limit per page.")
    parser.add_argument("--partners", type=int, default=5000)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers.")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker.")
    parser.add_argument("--port", type=int, default=0, help="Loopback port (0: any free one).")
    parser.add_argument(
        "--pages", default="tab,list,run", help="Which pages, comma-separated (tab, list, run)."
    )
    parser.add_argument(
        "--no-targets", action="store_true", help="Report missed targets without failing."
    )
    args = parser.parse_args()

    slug, session, run = setup_data(args.partners, args.items)
    port = args.port or free_port()
    server = start_gunicorn(port, args.workers, args.threads)
    failed = False
    try:
        from django.db import connection

        print(
            f"load test on {connection.vendor}: gunicorn {args.workers} workers x "
            f"{args.threads} threads; {args.single} requests by one client, then "
            f"{args.requests} by {args.clients} clients; load average "
            + " ".join(f"{n:.2f}" for n in os.getloadavg())
        )
        pages = {
            TAB: (
                f"Partnerships tab ({args.partners} partners)",
                f"/o/{slug}/settings/partnerships/",
            ),
            "list": (
                f"Equipment list ({args.items} items)",
                f"/o/{slug}/settings/project/equipment/",
            ),
            "run": (f"Run page ({args.items} changes)", f"/o/{slug}/settings/sync/runs/{run}/"),
        }
        phases = [("one", 1, args.single), ("many", args.clients, args.requests)]
        chosen = args.pages.split(",")
        for page, (name, path) in pages.items():
            if page not in chosen:
                continue
            url = f"http://127.0.0.1:{port}{path}"
            hammer(url, session, args.workers, 2 * args.workers, args.seconds)  # warm-up
            for phase, clients, requests in phases:
                if not requests:
                    continue
                result = hammer(url, session, clients, requests, args.seconds)
                target, missed = verdict(page, phase, result, args.no_targets)
                print(
                    f"{name:<34} {clients:>2} client{'s' if clients > 1 else ' '} "
                    f"{result['requests']:>5} req  {result['throughput']:6.1f} req/s  "
                    f"p50 {result['p50']:7.1f} ms  p95 {result['p95']:7.1f} ms  "
                    f"errors {result['errors']}{target}"
                )
                failed |= result["errors"] > 0 or missed
        print("load average after: " + " ".join(f"{n:.2f}" for n in os.getloadavg()))
    finally:
        stop(server)
        cleanup()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
