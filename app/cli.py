"""`amour-florals` command line: serve, seed, create-admin, migrate, export-openapi, docs."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Annotated

import typer

from app.config import get_settings

cli = typer.Typer(help="Amour Florals API", no_args_is_help=True, add_completion=False)


@contextmanager
def database_url():
    """MONGODB_URL when set; otherwise the embedded server on the local var/ folder for this command."""
    from app.core.embedded_mongo import EmbeddedMongo

    settings = get_settings()
    if settings.mongodb_url:
        yield settings.mongodb_url
        return
    server = EmbeddedMongo(settings.embedded_db_dir / "mongo")
    try:
        yield server.start()
    finally:
        server.stop()


@asynccontextmanager
async def connected(url: str) -> AsyncIterator[None]:
    from app.core.db import connect

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
    """Serve the API with uvicorn. Without MONGODB_URL one embedded database server is shared by all workers."""
    import uvicorn

    with database_url() as url:
        os.environ["MONGODB_URL"] = url
        get_settings.cache_clear()
        typer.echo(f"API docs: http://{host}:{port}/docs")
        uvicorn.run("app.main:app_factory", factory=True, host=host, port=port, reload=reload,
                    workers=None if reload else workers, proxy_headers=True, log_config=None,
                    access_log=False)


@cli.command()
def seed() -> None:
    """Add demo data (idempotent) and print the demo logins."""
    from app.seed import seed_all

    async def run() -> list[str]:
        with database_url() as url:
            async with connected(url):
                return await seed_all()

    for line in asyncio.run(run()):
        typer.echo(line)


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

    async def run() -> str:
        with database_url() as url:
            async with connected(url):
                existing = await User.find_one(User.email == email)
                if existing:
                    await User.find_one(User.id == existing.id).update({"$set": {
                        "role": Role.admin, "is_active": True, "password_hash": hash_password(password)}})
                    return f"Promoted {email} to admin."
                await User(email=email, first_name=first_name, last_name=last_name, role=Role.admin,
                           password_hash=hash_password(password)).insert()
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
