"""Reads a Silver table (partitioned, with position deletes) with pyiceberg and DuckDB.

An independent reader: nothing here shares code with the Rust writer. pyiceberg
plans the scan (partitions, delete files matched to data files) and applies the
position deletes; DuckDB queries what pyiceberg scanned. Prints one JSON document:

- rows: every live row (the selected columns), sorted by the key column;
  dates as ISO text, decimals as text, timestamps as ISO text
- duckdb_count, duckdb_distinct_keys: what DuckDB sees over the same scan
- partition_spec: pyiceberg's rendering of the table's spec
- partitions: the distinct partition tuples of the live data files
- delete_files: how many live delete files, and their distinct partitions
- columns, types, field_ids: the current schema's columns in order, their
  types as pyiceberg prints them, and their field ids

usage: silver_read.py --uri sqlite:////abs/catalog.db --table silver.orders --key id [--columns a,b]
"""
import argparse
import json
import sys

from pyiceberg.catalog.sql import SqlCatalog


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--uri", required=True, help="SQLAlchemy URL of the SQL catalog")
    ap.add_argument("--name", default="lakehouse", help="catalog name")
    ap.add_argument("--table", required=True)
    ap.add_argument("--key", default="id")
    ap.add_argument("--columns", help="comma-separated; default: all")
    args = ap.parse_args()

    table = SqlCatalog(args.name, uri=args.uri).load_table(args.table)
    fields = tuple(args.columns.split(",")) if args.columns else ("*",)
    scan = table.scan(selected_fields=fields)
    rows = scan.to_arrow().to_pylist()
    rows.sort(key=lambda r: r[args.key])
    con = scan.to_duckdb(table_name="t")
    duckdb_count, duckdb_distinct = con.execute(
        f'SELECT count(*), count(DISTINCT "{args.key}") FROM t'
    ).fetchone()
    snapshot = table.current_snapshot()
    partitions, delete_partitions, delete_files = set(), set(), 0
    if snapshot is not None:
        for task in scan.plan_files():
            partitions.add(str(task.file.partition))
            for d in task.delete_files:
                delete_partitions.add(str(d.partition))
        delete_files = len(table.inspect.delete_files().to_pylist())
    out = {
        "rows": rows,
        "duckdb_count": duckdb_count,
        "duckdb_distinct_keys": duckdb_distinct,
        "partition_spec": str(table.spec()),
        "partitions": sorted(partitions),
        "delete_files": delete_files,
        "delete_partitions": sorted(delete_partitions),
        "properties": dict(table.properties),
        "columns": [f.name for f in table.schema().fields],
        "types": {f.name: str(f.field_type) for f in table.schema().fields},
        "field_ids": {f.name: f.field_id for f in table.schema().fields},
    }
    json.dump(out, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
