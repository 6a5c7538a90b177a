"""Flask CLI: seed, reset-test-data, create-admin, jobs (run, list, worker, cron)."""
from __future__ import annotations

import getpass
import sys

import click
from flask import Flask, current_app
from sqlalchemy import select

from app import seed as seeding
from app.auth.service import hash_password, validate_new_password
from app.core import audit, testmode
from app.core.db_timeouts import use_job_timeouts
from app.core.errors import DomainError
from app.core.jobs import PERIODIC, run_periodic
from app.core.redis import connection
from app.credits.cli import credits_cli
from app.extensions import db
from app.jobs_registry import load
from app.rbac.models import Role, RoleAssignment
from app.rbac.service import ensure_catalogue
from app.sandbox.cleanup import delete_all_test_data
from app.sandbox.seed import SEED_SANDBOX_KEY, SEED_SANDBOX_KEY_OWNER
from app.users.models import User


def register_cli(app: Flask) -> None:
    app.cli.add_command(seed)
    app.cli.add_command(reset_test_data)
    app.cli.add_command(create_admin)
    app.cli.add_command(jobs)
    app.cli.add_command(credits_cli)
    app.cli.add_command(welcome)


@click.command("seed")
def seed():
    """Load the demo and test personas (idempotent)."""
    click.echo("Seeding personas and domain data...")
    with testmode.test_mode(catalogue=True):  # test personas and data; the shared catalogue
        for seeder in seeding.SEEDERS:
            seeder(db.session, log=click.echo)
    db.session.commit()
    click.echo("Seeded. Staff sign-in: admin.test@rephlo.ai / AdminPassword123! (TOTP below)")
    click.echo(f"  TOTP secret: {seeding.ADMIN_TOTP_SECRET}")
    click.echo(f"  otpauth URI: {seeding.admin_totp_uri()}")


@click.command("welcome")
@click.option("--url", default="http://127.0.0.1:5000", help="Where the app answers.")
def welcome(url: str):
    """What a new user needs to sign in and call the API (printed by scripts/run.sh)."""
    import time

    import pyotp

    admin = db.session.scalar(select(User).where(User.email == "admin.test@rephlo.ai"))
    click.echo(f"\nRephlo Admin is running: {url}/admin")
    click.echo("  Staff sign-in   admin.test@rephlo.ai / AdminPassword123!")
    if admin is not None and admin.totp_secret == seeding.ADMIN_TOTP_SECRET:
        totp = pyotp.TOTP(seeding.ADMIN_TOTP_SECRET)
        left = totp.interval - int(time.time()) % totp.interval
        click.echo(f"  TOTP code       {totp.now()} (for {left} more seconds; codes come from the secret)")
        click.echo(f"  TOTP secret     {seeding.ADMIN_TOTP_SECRET}  ({seeding.admin_totp_uri()})")
    else:
        click.echo("  TOTP code       from the authenticator you enrolled")
    click.echo(f"  Sandbox API key {SEED_SANDBOX_KEY}  (test mode, acts as {SEED_SANDBOX_KEY_OWNER})")
    click.echo(f"  Try it          curl -H 'Authorization: Bearer {SEED_SANDBOX_KEY}' {url}/api/v1/credits/balance")
    jobs = "on RQ" if current_app.config["REDIS_URL"] else "on a worker thread; periodic jobs on the app's scheduler"
    click.echo(f"  Database        {db.engine.url.render_as_string(hide_password=True)}; background jobs {jobs}\n")


@click.command("reset-test-data")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def reset_test_data(ctx, yes: bool):
    """Delete all test data (every production row stays) and reseed the personas."""
    if not yes:
        click.confirm("Delete every row marked as test data, then reseed the personas?", abort=True)
    run = delete_all_test_data(db.session, trigger="cli", progress=None)
    for table, rows in sorted(run.deleted.items()):
        click.echo(f"  deleted {rows:>8} {table}")
    click.echo(f"Deleted {run.total_deleted} test rows in {run.batches} batches"
               + (f"; kept {run.kept} test rows that own production rows." if run.kept else "."))
    ctx.invoke(seed)


@click.command("create-admin")
@click.option("--email", prompt=True)
@click.option("--first-name", default="", prompt="First name")
@click.option("--last-name", default="", prompt="Last name")
def create_admin(email: str, first_name: str, last_name: str):
    """Create a real (production) super admin; MFA enrolment happens at first sign-in."""
    email = email.strip().lower()
    if db.session.scalar(select(User).where(User.email == email)):
        raise click.ClickException(f"{email} exists already.")
    password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    try:
        validate_new_password(password, "password")
    except DomainError as error:
        raise click.ClickException(error.message) from None
    ensure_catalogue(db.session)
    user = User(email=email, first_name=first_name, last_name=last_name, is_staff=True, email_verified=True,
                password_hash=hash_password(password))
    db.session.add(user)
    db.session.flush()
    role = db.session.scalar(select(Role).where(Role.name == "super_admin"))
    db.session.add(RoleAssignment(user_id=user.id, role_id=role.id, reason="Created with flask create-admin"))
    audit.record(db.session, "users.super_admin_created", actor="cli", target=user)
    db.session.commit()
    click.echo(f"Super admin {email} created. Sign in at /auth/login to set up two-factor sign-in.")


@click.group("jobs")
def jobs():
    """Background jobs: run one by hand, list them, start a worker or the cron scheduler."""


def _load_job_modules():
    load()


@jobs.command("list")
def jobs_list():
    _load_job_modules()
    for job in PERIODIC.values():
        click.echo(f"{job.name:28} {job.cron:14} {job.description}")


@jobs.command("run")
@click.argument("name")
def jobs_run(name: str):
    """Run a periodic job now, in this process."""
    _load_job_modules()
    if name not in PERIODIC:
        raise click.ClickException(f"Unknown job {name!r}. Known: {', '.join(sorted(PERIODIC))}")
    record = run_periodic(name)
    click.echo(f"{name}: {record.status} {record.result or ''}")
    if record.status != "finished":
        click.echo(record.error or "", err=True)
        sys.exit(1)


@jobs.command("worker")
@click.option("--queues", default="high,default,low")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
def jobs_worker(queues: str, burst: bool):
    """Start an RQ worker inside the app context, so every job has one."""
    from rq import Worker

    _load_job_modules()
    conn = connection()
    if conn is None:
        raise click.ClickException("Set REDIS_URL to run a worker.")
    worker = Worker(queues.split(","), connection=conn)
    use_job_timeouts(current_app._get_current_object())  # (closes the connections made so far)
    # The scheduler (a forked process) runs delayed retries for long-running workers. A burst worker
    # drains the queues and exits: it starts none, and so never waits at exit on a forked child
    # that hung on a lock another thread held at fork time (seen under load).
    worker.work(burst=burst, with_scheduler=not burst)


@jobs.command("cron")
def jobs_cron():
    """Start the RQ cron scheduler for every periodic job."""
    from rq.cron import CronScheduler

    _load_job_modules()
    conn = connection()
    if conn is None:
        raise click.ClickException("Set REDIS_URL to run the scheduler.")
    scheduler = CronScheduler(connection=conn, name="rephlo-cron")

    for job in PERIODIC.values():
        scheduler.register(run_periodic, job.queue, args=(job.name,), cron=job.cron, name=job.name)
    click.echo(f"cron: {len(PERIODIC)} periodic jobs registered")
    scheduler.start()
