"""Check the client openapi-python-client generated from openapi.json (called by contract/run.py).

Usage: python contract/python_client_check.py BASE_URL GENERATED_PACKAGE_DIR (its parent on PYTHONPATH)

1. Statically: every operation has a module whose ``_parse_response`` parses each documented 2xx into its
   model (``<Model>.from_dict`` or a list of them; 204/304 and the XML sitemap excepted) and every
   documented 4xx/5xx into ``Problem``.
2. Live, against the served demo shop: a 2xx parses into its model, an error into ``Problem`` with a
   ``ProblemCode`` member, and a signed-in call works through ``AuthenticatedClient``.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def snake(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def static_check(package: Path) -> list[str]:
    doc = json.loads((ROOT / "openapi.json").read_text())
    problems = []
    count = 0
    for path, item in doc["paths"].items():
        for method, op in item.items():
            count += 1
            module = package / "api" / snake(op["tags"][0]) / f"{op['operationId']}.py"
            if not module.exists():
                problems.append(f"{method.upper()} {path}: no module {module.name}")
                continue
            source = module.read_text()
            parse = source[source.index("def _parse_response"):source.index("def _build_response")]
            for status, response in op["responses"].items():
                block = re.search(rf"if response\.status_code == {status}:\n(.*?)return", parse, re.S)
                if block is None:
                    if status not in ("304",):
                        problems.append(f"{method.upper()} {path}: status {status} is not parsed")
                    continue
                body = block.group(1)
                content = response.get("content", {})
                if int(status) >= 400:
                    if "Problem.from_dict" not in body:
                        problems.append(f"{method.upper()} {path}: {status} is not parsed as Problem")
                elif "application/json" in content:
                    schema = content["application/json"]["schema"]
                    ref = schema.get("$ref") or schema.get("items", {}).get("$ref")
                    model = ref.rsplit("/", 1)[1] if ref else None
                    if model and f"{model_class(model)}.from_dict" not in body:
                        problems.append(f"{method.upper()} {path}: {status} is not parsed as {model}")
    print(f"static: {count} operations checked")
    return problems


def model_class(schema_name: str) -> str:
    # openapi-python-client class names: PascalCase of the schema name (Page_UserOut_ → PageUserOut).
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", schema_name) if part)


def live_check(base: str, package_name: str) -> list[str]:
    pkg = importlib.import_module(package_name)
    models = importlib.import_module(f"{package_name}.models")
    products_list = importlib.import_module(f"{package_name}.api.catalog.products_list")
    products_get = importlib.import_module(f"{package_name}.api.catalog.products_get")
    auth_login = importlib.import_module(f"{package_name}.api.auth.auth_login")
    orders_list = importlib.import_module(f"{package_name}.api.orders.orders_list")
    problems = []
    client = pkg.Client(base_url=base)
    page = products_list.sync_detailed(client=client, limit=3, in_stock=True)
    if page.status_code != 200 or not isinstance(page.parsed, models.ProductPage) or not page.parsed.items:
        problems.append(f"products_list: {page.status_code} {type(page.parsed).__name__}")
    missing = products_get.sync_detailed("no-such-bouquet", client=client)
    problem = missing.parsed
    if not (isinstance(problem, models.Problem) and problem.code == models.ProblemCode.NOT_FOUND
            and problem.status == 404):
        problems.append(f"products_get 404: {missing.status_code} {type(problem).__name__}")
    body = models.LoginIn(email="olivia@example.com", password="Bouquet-Demo-2026")
    login = auth_login.sync_detailed(client=client, body=body)
    if not isinstance(login.parsed, models.AuthResult):
        problems.append(f"auth_login: {login.status_code} {type(login.parsed).__name__}")
    else:
        authed = pkg.AuthenticatedClient(base_url=base, token=login.parsed.tokens.access_token)
        mine = orders_list.sync_detailed(client=authed)
        if not isinstance(mine.parsed, models.PageOrderSummaryOut):
            problems.append(f"orders_list: {mine.status_code} {type(mine.parsed).__name__}")
    anonymous = orders_list.sync_detailed(client=client)
    if not (isinstance(anonymous.parsed, models.Problem) and anonymous.parsed.code == models.ProblemCode.UNAUTHORIZED):
        problems.append(f"orders_list anonymous: {anonymous.status_code} {type(anonymous.parsed).__name__}")
    print("live: 2xx models and Problem parsed")
    return problems


def main() -> int:
    base, package = sys.argv[1], Path(sys.argv[2])
    problems = static_check(package) + live_check(base, package.name)
    for p in problems:
        print(f"FAIL {p}")
    print(f"{0 if problems else 1} passed, {1 if problems else 0} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
