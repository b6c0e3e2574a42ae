"""Rows of a table as pyiceberg or pypaimon read them, spelled as the Java readers print them.

The Python side of tests/tests/java_readers.rs: the same flags and the same JSON lines as
tests/interop/java (`{"row": {...}}` per row, with `"kind"` for Paimon), so the test compares
the two independent readers value by value: decimals as plain strings with their scale,
dates "2026-11-27", timestamps "2026-11-27T10:00:00.000000" ("Z" appended when adjusted to
UTC), binary as hex, non-finite floats as strings.

usage: rows_json.py iceberg --catalog-url sqlite:///abs/catalog.db --table ns.name [--snapshot-id N]
       rows_json.py paimon --table-path /abs/wh/db.db/table [--snapshot-id N]
"""
import argparse
import datetime
import decimal
import json
import math
import sys


def spell(v):
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else repr(v).replace("inf", "Infinity").replace("nan", "NaN")
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    if isinstance(v, datetime.datetime):
        if v.tzinfo is not None:
            return v.astimezone(datetime.timezone.utc).replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
        return v.strftime("%Y-%m-%dT%H:%M:%S.%f")
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, datetime.time):
        return v.strftime("%H:%M:%S.%f")
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    if isinstance(v, dict):
        return {str(k): spell(x) for k, x in v.items()}
    if isinstance(v, list):
        return [spell(x) for x in v]
    return str(v)


def iceberg(args):
    from pyiceberg.catalog.sql import SqlCatalog

    url = args.catalog_url
    if url.startswith("sqlite://"):
        url = "sqlite:///" + url[len("sqlite://"):]  # SQLAlchemy: sqlite:/// + the absolute path
    elif url.startswith("postgres://"):
        url = "postgresql+psycopg2://" + url[len("postgres://"):]
    table = SqlCatalog(args.catalog_name, uri=url).load_table(args.table)
    for r in table.scan(snapshot_id=args.snapshot_id).to_arrow().to_pylist():
        print(json.dumps({"row": {k: spell(v) for k, v in r.items()}}))


def paimon(args):
    import os

    from pypaimon import CatalogFactory

    path = os.path.abspath(args.table_path)
    db_dir, name = os.path.split(path)
    warehouse, db = os.path.split(db_dir)
    table = CatalogFactory.create({"warehouse": warehouse}).get_table(db[: -len(".db")] + "." + name)
    if args.snapshot_id is not None:
        table = table.copy({"scan.snapshot-id": str(args.snapshot_id)})
    rb = table.new_read_builder()
    for r in rb.new_read().to_arrow(rb.new_scan().plan().splits()).to_pylist():
        print(json.dumps({"kind": "+I", "row": {k: spell(v) for k, v in r.items()}}))


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("iceberg")
    i.add_argument("--catalog-url", required=True, help="our catalog URL: sqlite://FILE or postgres://...")
    i.add_argument("--catalog-name", default="lakehouse")
    i.add_argument("--warehouse", help="ignored (the Java reader's flag)")
    i.add_argument("--table", required=True)
    i.add_argument("--snapshot-id", type=int)
    p = sub.add_parser("paimon")
    p.add_argument("--table-path", required=True)
    p.add_argument("--snapshot-id", type=int)
    args = ap.parse_args()
    iceberg(args) if args.cmd == "iceberg" else paimon(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
