"""`amour-florals backup` / `restore`: mongodump's directory layout, both ways (issue 11 "Operations")."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path

import bson
import pytest
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient
from typer.testing import CliRunner

from app.cli import cli
from app.config import get_settings
from app.core.backup import index_model
from app.demo.seed import seed_all

RAW = CodecOptions(document_class=RawBSONDocument)


@pytest.fixture
def cli_env(mongo_url, monkeypatch):
    """Run commands against the test session's server; yields (invoke, client)."""
    runner = CliRunner()
    client: MongoClient = MongoClient(mongo_url, tz_aware=True)

    def invoke(db_name: str, *args: str):
        monkeypatch.setenv("MONGODB_URL", mongo_url)
        monkeypatch.setenv("MONGODB_DB", db_name)
        get_settings.cache_clear()
        return runner.invoke(cli, list(args), catch_exceptions=False)

    yield invoke, client
    client.close()
    get_settings.cache_clear()


def snapshot(client: MongoClient, db_name: str) -> dict[str, tuple[list[bytes], list[dict]]]:
    """Every collection's documents (raw BSON bytes, by _id) and index list, as the server reports them."""
    db = client.get_database(db_name, codec_options=RAW)
    state = {}
    for name in db.list_collection_names():
        docs = sorted((doc.raw for doc in db[name].find()), key=lambda raw: bson.decode(raw)["_id"])
        indexes = sorted((dict(spec) for spec in client[db_name][name].list_indexes()), key=lambda s: s["name"])
        state[name] = (docs, indexes)
    return state


async def test_backup_wipe_restore_gives_back_every_document_and_index(make_settings, app_factory, cli_env,
                                                                      tmp_path):
    invoke, client = cli_env
    # Nothing may write between the dump and the comparison (the analytics writer flushes on its own).
    settings = make_settings(workers_enabled=False, analytics_enabled=False)
    async with app_factory(settings):
        await seed_all()
        db_name = settings.mongodb_db
        before = snapshot(client, db_name)
        assert {"users", "products", "orders", "reviews", "categories"} <= set(before)
        assert all(docs for name, (docs, _) in before.items() if name in ("users", "products", "orders"))

        r = invoke(db_name, "backup", str(tmp_path / "dump"))
        assert r.exit_code == 0, r.output
        folder = tmp_path / "dump" / db_name
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            f"{name}.{ext}" for name in before for ext in ("bson", "metadata.json"))

        client.drop_database(db_name)
        assert snapshot(client, db_name) == {}
        r = invoke(db_name, "restore", str(tmp_path / "dump"))
        assert r.exit_code == 0, r.output
        assert f"Restored {sum(len(d) for d, _ in before.values())} documents" in r.output
        assert snapshot(client, db_name) == before

        # Restoring over data is refused and changes nothing; --drop replaces the collections in the dump.
        client[db_name].users.update_one({}, {"$set": {"first_name": "Changed"}})
        changed = snapshot(client, db_name)
        r = invoke(db_name, "restore", str(tmp_path / "dump"))
        assert r.exit_code == 2 and "already has documents" in r.output and "--drop" in r.output
        assert snapshot(client, db_name) == changed
        r = invoke(db_name, "restore", "--drop", str(tmp_path / "dump"))
        assert r.exit_code == 0, r.output
        assert snapshot(client, db_name) == before

        # A backup never overwrites an older one.
        r = invoke(db_name, "backup", str(tmp_path / "dump"))
        assert r.exit_code == 2 and "not empty" in r.output


async def test_dump_files_are_bson_and_mongodump_metadata(make_settings, app_factory, cli_env, tmp_path):
    invoke, client = cli_env
    settings = make_settings(workers_enabled=False, analytics_enabled=False)  # nothing writes during the dump
    async with app_factory(settings):
        await seed_all()
        r = invoke(settings.mongodb_db, "backup", str(tmp_path))
        assert r.exit_code == 0, r.output
    folder = tmp_path / settings.mongodb_db
    db = client[settings.mongodb_db]
    for path in folder.glob("*.bson"):
        name = path.name.removesuffix(".bson")
        docs = bson.decode_all(path.read_bytes())  # PyMongo's own decoder: the whole file is BSON
        assert len(docs) == db[name].count_documents({})
        assert sorted(d["_id"] for d in docs) == sorted(d["_id"] for d in db[name].find({}, {"_id": 1}))
        with path.open("rb") as fh:
            assert sum(1 for _ in bson.decode_file_iter(fh)) == len(docs)

        meta = json.loads((folder / f"{name}.metadata.json").read_text())  # plain JSON: canonical EJSON v2
        assert meta["collectionName"] == name and meta["type"] == "collection"
        assert meta["indexes"][0] == {"v": {"$numberInt": "2"}, "key": {"_id": {"$numberInt": "1"}},
                                      "name": "_id_"}
        assert [i["name"] for i in meta["indexes"]] == [i["name"] for i in db[name].list_indexes()]
    users = json.loads((folder / "users.metadata.json").read_text())
    assert any(i.get("unique") is True for i in users["indexes"])  # the unique email index
    # password hashes and addresses: only the owner may read the dump, whatever the umask
    assert folder.stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in folder.iterdir()} == {0o600}


def write_bson(path: Path, docs: list[dict], gz: bool = False) -> None:
    data = b"".join(bson.encode(d) for d in docs)
    path.write_bytes(gzip.compress(data) if gz else data)


def test_restore_reads_a_directory_written_by_mongodump(cli_env, tmp_path):
    """The files below are byte-for-byte what mongodump writes: 100.x canonical metadata with uuid and
    type, a text index stored as _fts/_ftsx, an older release's relaxed metadata with v:1 and ns, a
    --gzip pair, a view (metadata only), an admin folder and prelude.json beside the database."""
    invoke, client = cli_env
    shop = tmp_path / "dump" / "shop"
    shop.mkdir(parents=True)
    (tmp_path / "dump" / "prelude.json").write_text('{"ServerVersion":"7.0.14","ToolVersion":"100.10.0"}')
    (tmp_path / "dump" / "admin").mkdir()
    write_bson(tmp_path / "dump" / "admin" / "system.version.bson", [{"_id": "featureCompatibilityVersion"}])

    flowers = [{"_id": "prd_1", "name": "Peony Cloud", "description": "soft pink peonies", "sku": "P-1",
                "price": 6400}, {"_id": "prd_2", "name": "Rose Garden", "description": "red roses", "sku": "R-2",
                                 "price": 5200}]
    write_bson(shop / "flowers.bson", flowers)
    (shop / "flowers.metadata.json").write_text(
        '{"indexes":[{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_"},'
        '{"v":{"$numberInt":"2"},"key":{"sku":{"$numberInt":"1"}},"name":"sku_1","unique":true},'
        '{"v":{"$numberInt":"2"},"key":{"_fts":"text","_ftsx":{"$numberInt":"1"}},"name":"search",'
        '"weights":{"description":{"$numberInt":"1"},"name":{"$numberInt":"5"}},"default_language":"english",'
        '"language_override":"language","textIndexVersion":{"$numberInt":"3"}}],'
        '"uuid":"6a1f0c5e8c1d4a0f9e3b2d7c4b5a6f70","collectionName":"flowers","type":"collection"}')
    write_bson(shop / "legacy.bson", [{"_id": "leg_1", "t": 1}, {"_id": "leg_2", "t": 2}])
    (shop / "legacy.metadata.json").write_text(
        '{"indexes":[{"name":"_id_","ns":"shop.legacy","v":1,"key":{"_id":1}},'
        '{"name":"t_1","ns":"shop.legacy","v":1,"key":{"t":1}}]}')
    write_bson(shop / "zipped.bson.gz", [{"_id": "z_1", "zone": "10012"}], gz=True)
    (shop / "zipped.metadata.json.gz").write_bytes(gzip.compress(
        b'{"indexes":[{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_"}],'
        b'"collectionName":"zipped","type":"collection"}'))
    (shop / "recent.metadata.json").write_text(
        '{"options":{"viewOn":"flowers","pipeline":[{"$match":{"price":{"$gt":{"$numberInt":"5000"}}}}]},'
        '"indexes":[],"collectionName":"recent","type":"view"}')

    target = f"restored_{uuid.uuid4().hex[:8]}"
    try:
        r = invoke(target, "restore", str(tmp_path / "dump"))
        assert r.exit_code == 0, r.output
        assert "skipped recent (view)" in r.output
        db = client[target]
        assert sorted(db.list_collection_names()) == ["flowers", "legacy", "zipped"]
        assert list(db.flowers.find().sort("_id")) == flowers
        assert [d["t"] for d in db.legacy.find().sort("_id")] == [1, 2]
        assert db.zipped.find_one() == {"_id": "z_1", "zone": "10012"}
        unique = [i for i in db.flowers.list_indexes() if dict(i["key"]) == {"sku": 1}]
        assert unique and unique[0].get("unique") is True
        assert [d["_id"] for d in db.flowers.find({"$text": {"$search": "peonies"}})] == ["prd_1"]
        assert [dict(i["key"]) for i in db.legacy.list_indexes()] == [{"_id": 1}, {"t": 1}]
    finally:
        client.drop_database(target)


def test_a_text_index_spec_is_rebuilt_from_its_weights():
    spec = {"v": 2, "key": {"kind": 1, "_fts": "text", "_ftsx": 1, "price": -1}, "name": "search",
            "ns": "shop.flowers", "weights": {"name": 5, "tags": 2}, "default_language": "english"}
    doc = index_model(spec).document
    assert list(doc["key"].items()) == [("kind", 1), ("name", "text"), ("tags", "text"), ("price", -1)]
    assert "v" not in doc and "ns" not in doc
    assert doc["weights"] == {"name": 5, "tags": 2} and doc["name"] == "search"


def test_restore_refuses_a_folder_without_the_database(cli_env, tmp_path):
    invoke, _ = cli_env
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    r = invoke("amour_florals", "restore", str(tmp_path))
    assert r.exit_code == 2 and "pass --source-db" in r.output
