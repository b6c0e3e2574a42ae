#!/usr/bin/env python3
"""Independent check of changelog-store tables with pypaimon 2.1.0.

read:   pypaimon_check.py read <warehouse> <db.table> [--snapshot N]
        prints every row pypaimon reads as one JSON object per line, sorted.
read-snapshots: pypaimon_check.py read-snapshots <warehouse> <db.table> N [N ...]
        one process for many snapshots: prints {"snapshot": N, "rows": [...]} per line,
        rows sorted as by `read`.
write:  pypaimon_check.py write <warehouse> <db.table>
        creates a small primary-key table with pypaimon (bucket 2, two commits,
        one update) so changelog-store can be checked against files it did not write.
write-decimal: pypaimon_check.py write-decimal <warehouse> <db.table>
        creates a table keyed by DECIMAL(20, 0) with DECIMAL(10, 2) and DECIMAL(38, 6)
        values (bucket 3, two commits, one update), written by pypaimon and pyarrow.
write-ops: pypaimon_check.py write-ops <warehouse> <db.table> <ops.json>
        creates a table (k BIGINT NOT NULL, region STRING NOT NULL, v BIGINT, s STRING,
        op STRING; primary key (region, k); options from the file, e.g. `rowkind.field`
        = op and `changelog-producer` = input) and commits each list of rows of
        {"options": {...}, "commits": [[{row}, ...], ...]} as one commit. The caller
        keeps its own model of the expected table; this script only writes.

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


def read_rows(table, snapshot):
    if snapshot is not None:
        table = table.copy({"scan.snapshot-id": str(snapshot)})
    rb = table.new_read_builder()
    splits = rb.new_scan().plan().splits()
    rows = rb.new_read().to_arrow(splits).to_pylist()
    return sorted((json.loads(json.dumps(r, default=str)) for r in rows),
                  key=lambda r: json.dumps(r, sort_keys=True))


def read_snapshots(warehouse, identifier, snapshots):
    from pypaimon import CatalogFactory

    catalog = CatalogFactory.create({"warehouse": warehouse})
    table = catalog.get_table(identifier)
    for s in snapshots:
        print(json.dumps({"snapshot": s, "rows": read_rows(table, s)}, sort_keys=True))


def commit_each(table, pa_schema, batches):
    """Writes each list of rows in `batches` with pypaimon and commits it on its own."""
    import pyarrow as pa

    wb = table.new_batch_write_builder()
    for rows in batches:
        w = wb.new_write()
        c = wb.new_commit()
        w.write_arrow(pa.Table.from_pylist(rows, schema=pa_schema))
        c.commit(w.prepare_commit())
        w.close()
        c.close()


def write_ops(warehouse, identifier, ops_path):
    import pyarrow as pa
    from pypaimon import CatalogFactory, Schema

    with open(ops_path) as f:
        ops = json.load(f)
    catalog = CatalogFactory.create({"warehouse": warehouse})
    catalog.create_database(identifier.split(".")[0], True)
    pa_schema = pa.schema([
        pa.field("k", pa.int64(), nullable=False),
        pa.field("region", pa.string(), nullable=False),
        ("v", pa.int64()),
        ("s", pa.string()),
        ("op", pa.string()),
    ])
    options = {"file.format": "parquet"}
    options.update(ops["options"])
    schema = Schema.from_pyarrow_schema(pa_schema, primary_keys=["region", "k"], options=options)
    catalog.create_table(identifier, schema, False)
    table = catalog.get_table(identifier)
    commit_each(table, pa_schema, ops["commits"])


def write_decimal(warehouse, identifier):
    from decimal import Decimal

    import pyarrow as pa
    from pypaimon import CatalogFactory, Schema

    catalog = CatalogFactory.create({"warehouse": warehouse})
    catalog.create_database(identifier.split(".")[0], True)
    pa_schema = pa.schema([
        pa.field("id", pa.decimal128(20, 0), nullable=False),
        ("price", pa.decimal128(10, 2)),
        ("total", pa.decimal128(38, 6)),
    ])
    schema = Schema.from_pyarrow_schema(
        pa_schema, primary_keys=["id"], options={"bucket": "3", "file.format": "parquet"})
    catalog.create_table(identifier, schema, False)
    table = catalog.get_table(identifier)
    big = 10 ** 19
    batches = [
        [{"id": Decimal(big + i), "price": Decimal(i * 125) / 100, "total": Decimal(f"-{i}.000001")}
         for i in range(12)],
        [{"id": Decimal(big + 5), "price": Decimal("99999999.99"), "total": None}],
    ]
    commit_each(table, pa_schema, batches)


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
    batches = [
        [{"k": i, "v": i * 10, "s": f"row {i}", "ts": 1} for i in range(8)],
        [{"k": 3, "v": -1, "s": "updated", "ts": 2}],
    ]
    commit_each(table, pa_schema, batches)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["read", "read-snapshots", "write", "write-decimal", "write-ops"])
    p.add_argument("warehouse")
    p.add_argument("table", help="db.table")
    p.add_argument("args", nargs="*", help="snapshot ids (read-snapshots) or ops.json (write-ops)")
    p.add_argument("--snapshot", type=int, default=None)
    a = p.parse_args()
    if a.mode == "read":
        read(a.warehouse, a.table, a.snapshot)
    elif a.mode == "read-snapshots":
        read_snapshots(a.warehouse, a.table, [int(x) for x in a.args])
    elif a.mode == "write-ops":
        write_ops(a.warehouse, a.table, a.args[0])
    elif a.mode == "write-decimal":
        write_decimal(a.warehouse, a.table)
    else:
        write(a.warehouse, a.table)


if __name__ == "__main__":
    sys.exit(main())
