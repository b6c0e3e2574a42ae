#!/usr/bin/env python3
"""Independent check of changelog-store tables with pypaimon 2.1.0.

read:   pypaimon_check.py read <warehouse> <db.table> [--snapshot N]
        prints every row pypaimon reads as one JSON object per line, sorted.
write:  pypaimon_check.py write <warehouse> <db.table>
        creates a small primary-key table with pypaimon (bucket 2, two commits,
        one update) so changelog-store can be checked against files it did not write.

Setup: python3 -m venv .venv && .venv/bin/pip install pypaimon==2.1.0
"""
import argparse
import json
import sys


def read(warehouse, identifier, snapshot):
    from pypaimon import CatalogFactory

    catalog = CatalogFactory.create({"warehouse": warehouse})
    table = catalog.get_table(identifier)
    if snapshot is not None:
        table = table.copy({"scan.snapshot-id": str(snapshot)})
    rb = table.new_read_builder()
    splits = rb.new_scan().plan().splits()
    rows = rb.new_read().to_arrow(splits).to_pylist()
    lines = sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)
    for line in lines:
        print(line)


def write(warehouse, identifier):
    import pyarrow as pa
    from pypaimon import CatalogFactory, Schema

    catalog = CatalogFactory.create({"warehouse": warehouse})
    db = identifier.split(".")[0]
    catalog.create_database(db, True)
    pa_schema = pa.schema([
        pa.field("k", pa.int64(), nullable=False),
        ("v", pa.int64()),
        ("s", pa.string()),
        ("ts", pa.int64()),
    ])
    schema = Schema.from_pyarrow_schema(
        pa_schema, primary_keys=["k"], options={"bucket": "2", "file.format": "parquet"})
    catalog.create_table(identifier, schema, False)
    table = catalog.get_table(identifier)
    wb = table.new_batch_write_builder()
    batches = [
        [{"k": i, "v": i * 10, "s": f"row {i}", "ts": 1} for i in range(8)],
        [{"k": 3, "v": -1, "s": "updated", "ts": 2}],
    ]
    for rows in batches:
        w = wb.new_write()
        c = wb.new_commit()
        w.write_arrow(pa.Table.from_pylist(rows, schema=pa_schema))
        c.commit(w.prepare_commit())
        w.close()
        c.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["read", "write"])
    p.add_argument("warehouse")
    p.add_argument("table", help="db.table")
    p.add_argument("--snapshot", type=int, default=None)
    a = p.parse_args()
    if a.mode == "read":
        read(a.warehouse, a.table, a.snapshot)
    else:
        write(a.warehouse, a.table)


if __name__ == "__main__":
    sys.exit(main())
