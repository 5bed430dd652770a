"""Dump and restore a database in mongodump's directory layout (``amour-florals backup`` / ``restore``).

Layout, as written by mongodump 100.x and read by mongorestore (mongodb/mongo-tools)::

    DIR/<db>/<collection>.bson            the documents, concatenated BSON, in natural order
    DIR/<db>/<collection>.metadata.json   {"indexes": [...listIndexes output...], "uuid": "<hex>",
                                           "collectionName": "<name>", "type": "collection"}
                                          (+ "options" when the collection has any), canonical
                                          Extended JSON v2 (``{"$numberInt": "1"}``)

`restore_database` reads that layout as mongodump writes it today and as older versions did (relaxed or
legacy JSON, ``v``/``ns`` in index specs, text indexes as ``{"_fts": "text", "_ftsx": 1}``, ``.gz`` files
from ``--gzip``). Documents are copied as raw BSON bytes both ways, so nothing is re-encoded.

Consistency: on a replica set or sharded cluster every collection is read in one snapshot session
(``readConcern: snapshot``), i.e. at one cluster time; the dump must then finish within the server's
``minSnapshotHistoryWindowInSeconds`` (300 s by default). The embedded server is consistent because the
command holds its data-directory lock (no API process can write meanwhile). A standalone MongoDB offers
neither: the report says so, and the dump is consistent only if nothing writes during it.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast
from uuid import UUID

import bson
from bson import json_util
from bson.codec_options import CodecOptions
from bson.json_util import CANONICAL_JSON_OPTIONS
from bson.raw_bson import RawBSONDocument
from pymongo import IndexModel, MongoClient
from pymongo.client_session import ClientSession
from pymongo.database import Database

RAW = CodecOptions(document_class=RawBSONDocument)
INSERT_BATCH_DOCS = 1000
INSERT_BATCH_BYTES = 8 * 1024 * 1024
SNAPSHOT_TOPOLOGIES = {"ReplicaSetWithPrimary", "Sharded"}


class BackupError(RuntimeError):
    """The dump or restore was refused before anything was written (message says why and what to do)."""


@dataclass
class Report:
    """Documents per collection, and remarks an operator should read (consistency, skipped entries)."""

    database: str
    folder: Path
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _snapshot_session(client: MongoClient[dict[str, Any]], report: Report) -> ClientSession | None:
    kind = client.topology_description.topology_type_name
    if kind in SNAPSHOT_TOPOLOGIES:
        report.notes.append(f"consistent: every collection read in one snapshot ({kind})")
        return client.start_session(snapshot=True)
    report.notes.append(f"no snapshot reads on a {kind} server: the dump is consistent only if nothing wrote "
                        "during it (the embedded server is locked by this command)")
    return None


def _raw_database(client: MongoClient[dict[str, Any]], name: str) -> Database[RawBSONDocument]:
    """Database ``name`` reading and writing documents as undecoded BSON (``RAW`` codec options)."""
    # pymongo's stubs type a database by its client's document class, not by the codec options it is opened with.
    return cast("Database[RawBSONDocument]", client.get_database(name, codec_options=RAW))


def _index_specs(db: Database[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [dict(spec) for spec in db[name].list_indexes()]


def _metadata(info: Mapping[str, Any], indexes: list[dict[str, Any]]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if info.get("options"):
        meta["options"] = info["options"]
    meta["indexes"] = indexes
    uuid = info.get("info", {}).get("uuid")
    if isinstance(uuid, bytes):  # bson Binary subtype 4
        uuid_hex = uuid.hex()
    elif isinstance(uuid, UUID):
        uuid_hex = uuid.hex
    else:
        uuid_hex = str(uuid or "").replace("-", "")
    if uuid_hex.strip("0"):  # the embedded server reports an all-zero uuid: leave it out
        meta["uuid"] = uuid_hex
    meta["collectionName"] = info["name"]
    meta["type"] = info.get("type", "collection")
    return meta


def dump_database(client: MongoClient[dict[str, Any]], db_name: str, out_dir: Path) -> Report:
    """Write every collection of ``db_name`` under ``out_dir/<db_name>/``; returns what was written.

    Raises `BackupError` when ``out_dir/<db_name>`` already holds files (an older backup is never
    overwritten). Each file is written under a temporary name and renamed when complete; the folder is 0700 and every
    file 0600 (only the owner may read a dump).
    """
    folder = Path(out_dir) / db_name
    if folder.exists() and any(folder.iterdir()):
        raise BackupError(f"{folder} is not empty: choose a new directory for each backup")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # a dump holds password hashes and addresses
    folder.chmod(0o700)
    report = Report(db_name, folder)
    db = _raw_database(client, db_name)
    session = _snapshot_session(client, report)
    try:
        for info in sorted(db.with_options(codec_options=CodecOptions()).list_collections(),
                           key=lambda i: i["name"]):
            name = info["name"]
            if name.startswith("system.") or info.get("type", "collection") != "collection":
                report.notes.append(f"skipped {name} ({info.get('type', 'system collection')})")
                continue
            count = 0
            with _atomic(folder / f"{name}.bson") as out:
                for doc in db[name].find({}, session=session):
                    out.write(doc.raw)
                    count += 1
            meta = _metadata(info, _index_specs(db.with_options(codec_options=CodecOptions()), name))
            with _atomic(folder / f"{name}.metadata.json") as out:
                out.write(json_util.dumps(meta, json_options=CANONICAL_JSON_OPTIONS).encode())
            report.counts[name] = count
    finally:
        if session is not None:
            session.end_session()
    return report


class _atomic:
    """Write ``path`` through ``path.partial`` and rename it into place only when the block succeeds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".partial")

    def __enter__(self) -> IO[bytes]:
        # Owner-only from the first byte (0600), whatever the umask: a dump holds password hashes and addresses.
        self.fh = os.fdopen(os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
        return self.fh

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.fh.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


# --- restore --------------------------------------------------------------------------------------------


def _open(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        # A GzipFile reads like any binary file; typeshed just does not derive it from IO[bytes].
        return cast(IO[bytes], gzip.open(path, "rb"))
    return open(path, "rb")  # noqa: SIM115


def _strip(name: str, *suffixes: str) -> str | None:
    for suffix in suffixes:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


def find_dump_folder(src: Path, db_name: str, source_db: str | None = None) -> Path:
    """The folder holding the collections: ``src/<source_db or db_name>``, the only database folder
    under ``src``, or ``src`` itself when it holds .bson files. Raises `BackupError` otherwise."""
    src = Path(src)
    if not src.is_dir():
        raise BackupError(f"{src} is not a directory")
    if source_db:
        if not (src / source_db).is_dir():
            raise BackupError(f"{src} has no database folder {source_db!r}")
        return src / source_db
    if (src / db_name).is_dir():
        return src / db_name
    if any(_strip(p.name, ".bson", ".bson.gz") for p in src.iterdir() if p.is_file()):
        return src
    dbs = sorted(p.name for p in src.iterdir() if p.is_dir() and p.name not in ("admin", "config", "local"))
    if len(dbs) == 1:
        return src / dbs[0]
    raise BackupError(f"{src} holds no database folder {db_name!r}; found {dbs or 'none'}: pass --source-db")


def _collections(folder: Path) -> dict[str, dict[str, Path]]:
    found: dict[str, dict[str, Path]] = {}
    for path in sorted(folder.iterdir()):
        meta = _strip(path.name, ".metadata.json", ".metadata.json.gz")
        data = _strip(path.name, ".bson", ".bson.gz")
        if meta is not None:
            found.setdefault(meta, {})["metadata"] = path
        elif data is not None:
            found.setdefault(data, {})["bson"] = path
    return found


def read_metadata(path: Path | None) -> dict[str, Any]:
    """A metadata.json in any of mongodump's JSON flavours (canonical, relaxed, legacy) as Python values."""
    if path is None:
        return {}
    with _open(path) as fh:
        text = fh.read().decode()
    return json_util.loads(text) if text.strip() else {}


def index_model(spec: dict[str, Any]) -> IndexModel:
    """An index spec from listIndexes/mongodump as a model to create: ``v`` and ``ns`` dropped (as
    mongorestore does), a text index's internal ``_fts``/``_ftsx`` keys turned back into its fields."""
    spec = dict(spec)
    key = list(dict(spec.pop("key")).items())
    spec.pop("v", None)
    spec.pop("ns", None)
    if any(k == "_fts" for k, _ in key):
        weights = dict(spec.get("weights") or {})
        text_keys = [(f, "text") for f in weights]
        at = next(i for i, (k, _) in enumerate(key) if k == "_fts")
        key = [*key[:at], *text_keys, *[kv for kv in key[at:] if kv[0] not in ("_fts", "_ftsx")]]
    return IndexModel(key, **spec)


def _batches(path: Path) -> Iterator[list[RawBSONDocument]]:
    batch: list[RawBSONDocument] = []
    size = 0
    with _open(path) as fh:
        for doc in bson.decode_file_iter(fh, codec_options=RAW):
            batch.append(doc)
            size += len(doc.raw)
            if len(batch) >= INSERT_BATCH_DOCS or size >= INSERT_BATCH_BYTES:
                yield batch
                batch, size = [], 0
    if batch:
        yield batch


def restore_database(client: MongoClient[dict[str, Any]], db_name: str, src: Path, *, drop: bool = False,
                     indexes: bool = True, source_db: str | None = None) -> Report:
    """Load a dump directory into ``db_name``; returns the documents restored per collection.

    Without ``drop`` the restore is refused (`BackupError`, nothing written) when any collection it
    would load already holds documents; with it each such collection is dropped first. ``indexes=False``
    skips index creation (the app creates its declared indexes at start-up). Views, time series and
    ``system.*`` collections are skipped and listed in the notes.
    """
    folder = find_dump_folder(src, db_name, source_db)
    report = Report(db_name, folder)
    db = _raw_database(client, db_name)
    plan: list[tuple[str, dict[str, Any], Path | None]] = []
    for file_name, files in _collections(folder).items():
        meta = read_metadata(files.get("metadata"))
        name = meta.get("collectionName") or file_name
        kind = meta.get("type", "collection")
        if name.startswith("system.") or kind != "collection":
            report.notes.append(f"skipped {name} ({kind if kind != 'collection' else 'system collection'})")
            continue
        plan.append((name, meta, files.get("bson")))
    if not drop:
        busy = [name for name, _, _ in plan if db[name].find_one({}, projection={"_id": 1}) is not None]
        if busy:
            raise BackupError(f"{db_name} already has documents in {', '.join(busy)}: restore into an empty "
                              "database, or pass --drop to replace those collections")
    existing = set(db.list_collection_names())
    for name, meta, data in plan:
        if drop and name in existing:
            db.drop_collection(name)
            existing.discard(name)
        if name not in existing:  # created explicitly, as mongorestore does: empty collections come back too
            db.create_collection(name, **dict(meta.get("options") or {}))
        count = 0
        if data is not None:
            for batch in _batches(data):
                db[name].insert_many(batch, ordered=True)
                count += len(batch)
        if indexes:
            models = [index_model(s) for s in meta.get("indexes", []) if s.get("name") != "_id_"]
            if models:
                db[name].create_indexes(models)
        report.counts[name] = count
    return report
