"""Reads a table written by lakehouse with pyiceberg (and DuckDB over it).

An independent reader: nothing here shares code with the Rust writer.
Prints one JSON document: the rows (selected columns, sorted by Kafka
coordinates), the row count DuckDB sees, and the snapshot ids pyiceberg lists.

usage: pyiceberg_read.py --uri sqlite:////abs/catalog.db --table bronze.orders
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
    ap.add_argument("--columns", default="kafka_topic,kafka_partition,kafka_offset,key,value,op,event_kind,record_hash")
    ap.add_argument("--snapshot-id", type=int)
    args = ap.parse_args()

    catalog = SqlCatalog(args.name, uri=args.uri)
    table = catalog.load_table(args.table)
    columns = tuple(args.columns.split(","))
    scan = table.scan(selected_fields=columns, snapshot_id=args.snapshot_id)
    arrow = scan.to_arrow()
    rows = arrow.to_pylist()
    rows.sort(key=lambda r: (r.get("kafka_topic"), r.get("kafka_partition"), r.get("kafka_offset")))
    con = table.scan(snapshot_id=args.snapshot_id).to_duckdb(table_name="t")
    duckdb_count = con.execute("SELECT count(*) FROM t").fetchone()[0]
    duckdb_distinct = con.execute(
        "SELECT count(*) FROM (SELECT DISTINCT kafka_topic, kafka_partition, kafka_offset FROM t)"
    ).fetchone()[0]
    out = {
        "rows": rows,
        "duckdb_count": duckdb_count,
        "duckdb_distinct_coordinates": duckdb_distinct,
        "snapshot_ids": [s.snapshot_id for s in table.metadata.snapshots],
        "current_snapshot_id": table.metadata.current_snapshot_id,
        "partition_spec": str(table.spec()),
    }
    json.dump(out, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
