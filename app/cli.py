"""`amour-florals` command line: serve, seed, create-admin, migrate, rollups, backup, restore, export-openapi,
docs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.config import get_settings

if TYPE_CHECKING:  # imported where used, so that a command loads only what it needs
    from pymongo import MongoClient

    from app.core.backup import Report

cli = typer.Typer(help="Amour Florals API", no_args_is_help=True, add_completion=False)


@contextmanager
def database_url() -> Iterator[str]:
    """MONGODB_URL when set; otherwise the embedded server on the local var/ folder for this command.

    Exits with status 1 and a message when another process already serves that folder.
    """
    from app.core.embedded_mongo import DataDirBusy, EmbeddedMongo

    settings = get_settings()
    if settings.mongodb_url:
        yield settings.mongodb_url
        return
    server = EmbeddedMongo(settings.embedded_db_dir / "mongo")
    try:
        try:
            url = server.start()
        except DataDirBusy as busy:
            typer.echo(f"Refused: {busy}", err=True)
            raise typer.Exit(1) from None
        yield url
    finally:
        server.stop()


class Stopped(BaseException):
    """Raised by the signal handlers `serve` installs, so every `finally` (the database child) runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def install_stop_handlers() -> None:
    """SIGTERM and SIGINT raise `Stopped`; SIGHUP is turned into SIGTERM.

    While uvicorn serves one process it replaces the SIGTERM/SIGINT handlers, shuts down gracefully
    and then raises the signal again, which lands here (instead of the default action, which would
    kill the process without running `finally` and leave the database child running). SIGHUP, which
    uvicorn ignores in that mode, goes the same way. With ``--workers N`` uvicorn's supervisor keeps
    its own meaning of SIGHUP (restart the workers; the database server stays with its live parent).
    """

    def stop(signum: int, frame: object) -> None:
        raise Stopped(signum)

    def hangup(signum: int, frame: object) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # reaches whichever SIGTERM handler is current

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, hangup)


@asynccontextmanager
async def connected(url: str) -> AsyncIterator[None]:
    from app.models.db import connect

    client = await connect(get_settings(), url)
    try:
        yield
    finally:
        await client.close()


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (development)")] = False,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes")] = 1,
) -> None:
    """Serve the API with uvicorn. Without MONGODB_URL one embedded database server is shared by all workers.
    SIGTERM, SIGINT and SIGHUP stop it gracefully, the embedded database server included (exit status 0).
    Several workers need REDIS_URL: rate limits, the catalog cache and live events are shared through it.
    """
    import uvicorn

    if workers > 1 and not reload and not get_settings().redis_url:
        typer.echo("--workers > 1 needs REDIS_URL: the workers share rate limits, the catalog cache and live "
                   "events through Redis (e.g. REDIS_URL=redis://127.0.0.1:6379/0).", err=True)
        raise typer.Exit(2)
    install_stop_handlers()
    os.environ.update(served_at(host, port))
    try:
        with database_url() as url:
            os.environ["MONGODB_URL"] = url
            get_settings.cache_clear()
            typer.echo(f"API docs: http://{host}:{port}/docs")
            uvicorn.run("app.main:app_factory", factory=True, host=host, port=port, reload=reload,
                        workers=None if reload else workers, proxy_headers=True, log_config=None,
                        access_log=False)
    except Stopped as stopped:
        typer.echo(f"Stopped by {signal.Signals(stopped.signum).name}.", err=True)


def served_at(host: str, port: int) -> dict[str, str]:
    """Environment for ``serve``: when PUBLIC_BASE_URL is not configured, the address being served, so links
    the API writes (local image URLs, unsubscribe links) name the port in use (``--port 9000``), not 8000.
    A wildcard bind (0.0.0.0, ::) names 127.0.0.1; behind a proxy, set PUBLIC_BASE_URL."""
    if "public_base_url" in get_settings().model_fields_set:
        return {}
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - compared, not bound
    shown = f"[{shown}]" if ":" in shown else shown
    return {"PUBLIC_BASE_URL": f"http://{shown}:{port}"}


@cli.command()
def seed(
    host: Annotated[str, typer.Option(help="The host `serve` will bind (named by the demo's links)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port `serve` will use (named by the demo's links)")] = 8000,
) -> None:
    """Add demo data (idempotent) and print the demo logins. Local image URLs name ``--host``/``--port`` (the
    address ``serve`` will use) unless PUBLIC_BASE_URL is set."""
    from app.demo.seed import seed_all

    async def run() -> list[str]:
        with database_url() as url:
            async with connected(url):
                return await seed_all()

    with _environment(served_at(host, port)):
        lines = asyncio.run(run())
    for line in lines:
        typer.echo(line)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set ``values`` in the environment (and re-read the settings) for the block only."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()


@cli.command("create-admin")
def create_admin(
    email: Annotated[str | None, typer.Option(help="Email (prompted when omitted)")] = None,
    password: Annotated[str | None, typer.Option(help="Password (prompted when omitted)")] = None,
    first_name: str = "Shop",
    last_name: str = "Admin",
) -> None:
    """Create an administrator, or promote and re-activate an existing account."""
    from pydantic import TypeAdapter, ValidationError

    from app.core.errors import AppError
    from app.core.security import hash_password
    from app.models.user import Role, User
    from app.schemas.auth import Email
    from app.services.auth import check_password_policy

    email = email or typer.prompt("Email")
    password = password or typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        email = TypeAdapter(Email).validate_python(email)
        check_password_policy(password, email)
    except (ValidationError, AppError) as exc:
        typer.echo(f"Refused: {getattr(exc, 'detail', exc)}", err=True)
        raise typer.Exit(2) from None

    from app.services.audit import Actor, audited
    from app.services.audit_targets import ACTIONS

    cli_actor = Actor(id=None, role="cli")

    async def run() -> str:
        with database_url() as url:
            async with connected(url):
                settings = get_settings()
                existing = await User.find_one(User.email == email)
                if existing:  # audited like an admin's change (the entry never holds the password or its hash)
                    async with audited(ACTIONS["user.promote_admin"], existing.id, cli_actor, settings):
                        await User.find_one(User.id == existing.id).update({"$set": {
                            "role": Role.admin, "is_active": True, "password_hash": hash_password(password)}})
                    return f"Promoted {email} to admin."
                async with audited(ACTIONS["user.create_admin"], None, cli_actor, settings) as scope:
                    user = await User(email=email, first_name=first_name, last_name=last_name, role=Role.admin,
                                      password_hash=hash_password(password)).insert()
                    scope.target_id = user.id
                return f"Created admin {email}."

    typer.echo(asyncio.run(run()))


@cli.command()
def migrate(
    backward: Annotated[bool, typer.Option("--backward", help="Roll back instead of applying")] = False,
    distance: Annotated[int, typer.Option(help="How many migrations (0 = all)")] = 0,
    use_transaction: Annotated[bool, typer.Option(help="Needs a replica set on real MongoDB")] = False,
    path: Annotated[Path, typer.Option(help="Migrations folder")] = Path("migrations"),
) -> None:
    """Run Beanie migrations in migrations/ forward (default) or backward."""
    from beanie.executors.migrate import MigrationSettings, run_migrate
    from beanie.migrations.models import RunningDirections

    settings = get_settings()
    with database_url() as url:
        ms = MigrationSettings(
            direction=RunningDirections.BACKWARD if backward else RunningDirections.FORWARD,
            distance=distance, connection_uri=url, database_name=settings.mongodb_db, path=str(path),
            use_transaction=use_transaction,
        )
        asyncio.run(run_migrate(ms))
    typer.echo("Migrations done.")


rollups_cli = typer.Typer(help="Daily sales rollups (what the sales reports read)", no_args_is_help=True)
cli.add_typer(rollups_cli, name="rollups")


@rollups_cli.command("rebuild")
def rollups_rebuild(
    start: Annotated[str | None, typer.Option("--from", help="First shop day YYYY-MM-DD (default: first order's)")]
    = None,
    end: Annotated[str | None, typer.Option("--to", help="Last shop day YYYY-MM-DD (default: last order's)")] = None,
) -> None:
    """Recompute the daily sales rollups of a range of shop days from the orders (idempotent; safe while the
    API serves). Run it after changing SHOP_TIMEZONE."""
    from datetime import date

    from app.services.sales_rollups import SalesRollups

    try:
        bounds = [date.fromisoformat(v) if v else None for v in (start, end)]
    except ValueError:
        typer.echo("Refused: --from and --to are dates, YYYY-MM-DD.", err=True)
        raise typer.Exit(2) from None

    async def run() -> str:
        with database_url() as url:
            async with connected(url):
                rollups = SalesRollups(get_settings())
                first, last = bounds
                if first is None or last is None:
                    span = await rollups.order_days()
                    if span is None:
                        return "No orders: nothing to rebuild."
                    first, last = first or span[0], last or span[1]
                if first > last:
                    return f"Nothing to rebuild: {first} is after {last}."
                counted = await rollups.rebuild(first, last)
                return f"Rebuilt the shop days {first} to {last}: {counted} paid orders counted."

    typer.echo(asyncio.run(run()))


def _mongo_client(url: str) -> MongoClient[dict[str, Any]]:
    from pymongo import MongoClient

    return MongoClient(url, serverSelectionTimeoutMS=10_000, appname="amour-florals-backup")


def _print_report(verb: str, report: Report) -> None:
    for name, count in report.counts.items():
        typer.echo(f"  {name}: {count} documents")
    for note in report.notes:
        typer.echo(f"  note: {note}")
    typer.echo(f"{verb} {sum(report.counts.values())} documents in {len(report.counts)} collections "
               f"({report.folder}).")


@cli.command()
def backup(directory: Annotated[Path, typer.Argument(help="New directory; DIR/<db>/ receives the dump")]) -> None:
    """Dump every collection in mongodump's layout (<collection>.bson + .metadata.json), for restore or mongorestore."""
    from app.core.backup import BackupError, dump_database

    with database_url() as url:
        client = _mongo_client(url)
        try:
            report = dump_database(client, get_settings().mongodb_db, directory)
        except BackupError as exc:
            typer.echo(f"Refused: {exc}", err=True)
            raise typer.Exit(2) from None
        finally:
            client.close()
    _print_report("Dumped", report)


@cli.command()
def restore(
    directory: Annotated[Path, typer.Argument(help="A directory written by `backup` or by mongodump")],
    drop: Annotated[bool, typer.Option("--drop", help="Drop each collection in the dump before loading it")] = False,
    indexes: Annotated[bool, typer.Option(help="Create the indexes listed in the metadata files")] = True,
    source_db: Annotated[str | None, typer.Option(help="Database folder in DIR (default: MONGODB_DB, or the "
                                                       "only one there)")] = None,
) -> None:
    """Load a dump (ours or mongodump's) into MONGODB_DB; refused when a collection is not empty, unless --drop."""
    from app.core.backup import BackupError, restore_database

    with database_url() as url:
        client = _mongo_client(url)
        try:
            report = restore_database(client, get_settings().mongodb_db, directory, drop=drop, indexes=indexes,
                                      source_db=source_db)
        except BackupError as exc:
            typer.echo(f"Refused: {exc}", err=True)
            raise typer.Exit(2) from None
        finally:
            client.close()
    _print_report("Restored", report)


@cli.command("export-openapi")
def export_openapi(
    output: Annotated[Path, typer.Argument(help="File to write")] = Path("openapi.json"),
    check: Annotated[bool, typer.Option("--check", help="Fail if the file differs from the live schema")] = False,
) -> None:
    """Write the app's OpenAPI document (or, with --check, verify the committed one is current)."""
    from app.config import Settings
    from app.main import create_app

    schema = create_app(Settings(_env_file=None)).openapi()
    text = json.dumps(schema, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
    if check:
        current = output.read_text() if output.exists() else ""
        if current != text:
            typer.echo(f"{output} is stale: run `amour-florals export-openapi` and commit it.", err=True)
            raise typer.Exit(1)
        typer.echo(f"{output} is current.")
        return
    output.write_text(text)
    typer.echo(f"Wrote {output}")


@cli.command("docs")
def docs(
    output: Annotated[Path, typer.Argument(help="The design document")] = Path("docs/system-design.md"),
    check: Annotated[bool, typer.Option("--check", help="Fail if its generated sections are stale")] = False,
) -> None:
    """Rewrite the generated sections of the system design document (ERD, indexes, order states, routes,
    settings) from the code, or with --check fail when the committed document differs (app/docgen)."""
    from app.docgen import DocGenError, generate

    try:
        current, text = generate(output)
    except DocGenError as exc:
        typer.echo(f"{output}: {exc}", err=True)
        raise typer.Exit(1) from None
    if check:
        if current != text:
            typer.echo(f"{output} is stale: run `amour-florals docs` and commit it.", err=True)
            raise typer.Exit(1)
        typer.echo(f"{output} is current.")
        return
    output.write_text(text, encoding="utf-8")
    typer.echo(f"Wrote {output}")


def main() -> None:
    sys.exit(cli())


if __name__ == "__main__":
    main()
