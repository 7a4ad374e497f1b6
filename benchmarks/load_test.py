"""Load test: the Partnerships tab (5,000 partners), a settings list (1,000 items) and the page
of a run with 1,000 changes, served by gunicorn on loopback, hit by concurrent clients. Prints
throughput, p50/p95 latency and the error rate per page; exits non-zero on any error.

    DATABASE_URL=postgres://… uv run python benchmarks/load_test.py --clients 20 --requests 400

Bounded in requests and in time; it only talks to 127.0.0.1 and removes its data afterwards.
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
PREFIX = "Load "


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


def start_gunicorn(port: int, workers: int) -> subprocess.Popen:
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
            "4",
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=400, help="Per page.")
    parser.add_argument("--seconds", type=float, default=120, help="Time limit per page.")
    parser.add_argument("--partners", type=int, default=5000)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers.")
    args = parser.parse_args()

    slug, session, run = setup_data(args.partners, args.items)
    port = free_port()
    server = start_gunicorn(port, args.workers)
    failed = False
    try:
        from django.db import connection

        print(f"load test on {connection.vendor}: {args.clients} clients, {args.requests} requests")
        pages = {
            f"Partnerships tab ({args.partners} partners)": f"/o/{slug}/settings/partnerships/",
            f"Equipment list ({args.items} items)": f"/o/{slug}/settings/project/equipment/",
            f"Run page ({args.items} changes)": f"/o/{slug}/settings/sync/runs/{run}/",
        }
        for name, path in pages.items():
            result = hammer(
                f"http://127.0.0.1:{port}{path}", session, args.clients, args.requests, args.seconds
            )
            print(
                f"{name:<36} {result['requests']:>5} req  {result['throughput']:7.1f} req/s  "
                f"p50 {result['p50']:7.1f} ms  p95 {result['p95']:7.1f} ms  "
                f"errors {result['errors']}"
            )
            failed |= result["errors"] > 0
    finally:
        stop(server)
        cleanup()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
