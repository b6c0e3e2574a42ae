"""Reads a row-delta'd table (position deletes) with pyiceberg and DuckDB.

An independent reader: nothing here shares code with the Rust writer. pyiceberg
plans the scan (matching delete files to data files by partition, sequence
number and file_path bounds) and applies the position deletes itself; DuckDB
queries what pyiceberg scanned. Prints one JSON document:

- rows: [id, region, v] of the live rows, sorted by id
- duckdb_count, duckdb_id_sum: what DuckDB sees over the same scan
- snapshots: id, parent, sequence number, operation and summary of each snapshot
- delete_files: the live delete files pyiceberg lists (content 1 = position deletes)
- manifests: content (0 data, 1 deletes) and sequence number of each manifest

usage: row_delta_read.py --uri sqlite:////abs/catalog.db --table silver.people [--snapshot-id N]
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
    ap.add_argument("--snapshot-id", type=int)
    args = ap.parse_args()

    table = SqlCatalog(args.name, uri=args.uri).load_table(args.table)
    scan = table.scan(selected_fields=("id", "region", "v"), snapshot_id=args.snapshot_id)
    rows = sorted([r["id"], r["region"], r["v"]] for r in scan.to_arrow().to_pylist())
    con = scan.to_duckdb(table_name="t")
    duckdb_count, duckdb_id_sum = con.execute("SELECT count(*), coalesce(sum(id), 0) FROM t").fetchone()

    snapshots = [
        {
            "snapshot_id": s.snapshot_id,
            "parent_snapshot_id": s.parent_snapshot_id,
            "sequence_number": s.sequence_number,
            "operation": str(s.summary.operation.value) if s.summary else None,
            "summary": {k: v for k, v in (s.summary.additional_properties.items() if s.summary else [])},
        }
        for s in table.metadata.snapshots
    ]
    snapshot = table.snapshot_by_id(args.snapshot_id) if args.snapshot_id else table.current_snapshot()
    delete_files = table.inspect.delete_files(snapshot_id=snapshot.snapshot_id).to_pylist() if snapshot else []
    manifests = (
        [{"content": int(m.content), "sequence_number": m.sequence_number} for m in snapshot.manifests(table.io)]
        if snapshot
        else []
    )
    out = {
        "rows": rows,
        "duckdb_count": duckdb_count,
        "duckdb_id_sum": duckdb_id_sum,
        "current_snapshot_id": table.metadata.current_snapshot_id,
        "last_sequence_number": table.metadata.last_sequence_number,
        "snapshots": snapshots,
        "delete_files": [
            {"content": int(f["content"]), "file_path": f["file_path"], "record_count": f["record_count"]}
            for f in delete_files
        ],
        "manifests": manifests,
    }
    json.dump(out, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
