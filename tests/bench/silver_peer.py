"""The Python peer of the Silver benchmark: the same refinement as silver-refiner,
written the straightforward way with pyarrow and pyiceberg 0.12.

Per Bronze table of the commerce schema, batch by batch (--batch rows): pyarrow
reads the Bronze rows (the data files pyiceberg plans), `json.loads` each raw
Debezium value, types and cleanses the `after` image by the demo contracts
(deploy/local/contracts/commerce.toml: long, string with trim / lower-case /
empty-as-null, decimal(p,s) never rounded, date from days), checks the rules
(not null, regex, allowed, min), keeps the newest change per key (source LSN,
Kafka offset breaking ties), then `Table.upsert` on the business key for the
upserts and `Table.delete` for the deletes, into its own unpartitioned Iceberg
table (zstd). Rejects are counted, not written. No exactly-once bookkeeping.

Prints one JSON line: rows, seconds, cpu_seconds, max_rss_mib.

usage: silver_peer.py --uri sqlite:////abs/catalog.db --warehouse file:///abs/wh --rows 200000 [--batch 50000]
"""
import argparse
import json
import re
import resource
import sys
import time
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import In

EPOCH = date(1970, 1, 1)
EMAIL = re.compile(r"^[^@ ]+@[^@ ]+$")
STATUSES = {"pending", "paid", "shipped", "delivered", "cancelled"}


def text(v, trim=False, lower=False, empty_null=False):
    if v is None:
        return None
    if not isinstance(v, str):
        raise ValueError("type")
    if trim:
        v = v.strip()
    if empty_null and v == "":
        return None
    return v.lower() if lower else v


def long(v):
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError("type")
    return v


def dec(v, precision, scale):
    if v is None:
        return None
    try:
        d = Decimal(str(v))
    except InvalidOperation:
        raise ValueError("type")
    q = d.quantize(Decimal(1).scaleb(-scale))
    if q != d or len(q.as_tuple().digits) > precision:
        raise ValueError("precision")
    return q


def days(v):
    if v is None:
        return None
    return EPOCH + timedelta(days=long(v))


def need(v):
    if v is None:
        raise ValueError("not_null")
    return v


def customers(a):
    email = text(a.get("email"), trim=True, lower=True)
    if email is not None and not EMAIL.match(email):
        raise ValueError("regex")
    return {"id": need(long(a.get("id"))), "first_name": need(text(a.get("first_name"), trim=True)),
            "last_name": need(text(a.get("last_name"), trim=True)), "email": email}


def products(a):
    price = dec(a.get("price"), 10, 2)
    if price is not None and price < 0:
        raise ValueError("min")
    return {"id": need(long(a.get("id"))), "name": need(text(a.get("name"))),
            "description": text(a.get("description"), empty_null=True), "price": price}


def orders(a):
    status = text(a.get("status"))
    if status is not None and status not in STATUSES:
        raise ValueError("allowed")
    total = dec(a.get("total"), 12, 2)
    if total is not None and total < 0:
        raise ValueError("min")
    return {"id": need(long(a.get("id"))), "customer_id": need(long(a.get("customer_id"))), "status": status,
            "order_date": days(a.get("order_date")), "total": total}


def order_items(a):
    price = dec(a.get("unit_price"), 10, 2)
    if price is not None and price < 0:
        raise ValueError("min")
    quantity = long(a.get("quantity"))
    if quantity is not None and quantity < 1:
        raise ValueError("min")
    return {"id": need(long(a.get("id"))), "order_id": need(long(a.get("order_id"))),
            "product_id": need(long(a.get("product_id"))), "quantity": quantity, "unit_price": price}


ENTITIES = {
    "customers": (customers, pa.schema([pa.field("id", pa.int64(), False), ("first_name", pa.string()),
                                        ("last_name", pa.string()), ("email", pa.string())])),
    "products": (products, pa.schema([pa.field("id", pa.int64(), False), ("name", pa.string()),
                                      ("description", pa.string()), ("price", pa.decimal128(10, 2))])),
    "orders": (orders, pa.schema([pa.field("id", pa.int64(), False), ("customer_id", pa.int64()),
                                  ("status", pa.string()), ("order_date", pa.date32()),
                                  ("total", pa.decimal128(12, 2))])),
    "order_items": (order_items, pa.schema([pa.field("id", pa.int64(), False), ("order_id", pa.int64()),
                                            ("product_id", pa.int64()), ("quantity", pa.int32()),
                                            ("unit_price", pa.decimal128(10, 2))])),
}


def seq(source_position):
    if source_position and source_position.startswith("lsn="):
        return int(source_position[4:])
    return 0


def refine(batch, typer):
    """Newest change per key of one Bronze batch: key -> (order, row or None)."""
    newest = {}
    rejects = 0
    cols = batch.to_pydict()
    for value, position, offset in zip(cols["value"], cols["source_position"], cols["kafka_offset"]):
        if value is None:
            continue
        try:
            ev = json.loads(value)
            op = ev.get("op")
            if op in ("c", "r", "u"):
                row = typer(ev["after"])
                key = row["id"]
            elif op == "d":
                row, key = None, need(long(ev["before"]["id"]))
            else:
                raise ValueError("parse")
        except (ValueError, KeyError, TypeError):
            rejects += 1
            continue
        order = (seq(position), offset)
        old = newest.get(key)
        if old is None or old[0] <= order:
            newest[key] = (order, row)
    return newest, rejects


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--uri", required=True)
    ap.add_argument("--warehouse", required=True, help="warehouse URL for the peer's own tables")
    ap.add_argument("--rows", type=int, required=True, help="Bronze rows to refine (spread over the tables)")
    ap.add_argument("--batch", type=int, default=50_000)
    args = ap.parse_args()

    cat = SqlCatalog("lakehouse", uri=args.uri, warehouse=args.warehouse)
    try:
        cat.create_namespace("peer")
    except Exception:
        pass
    bronze = {name: cat.load_table(f"bronze.{name}") for name in ENTITIES}
    sizes = {n: int(t.current_snapshot().summary["total-records"]) for n, t in bronze.items()}
    total = sum(sizes.values())
    started, cpu0 = time.monotonic(), time.process_time()
    done = rejects = 0
    for name, (typer, schema) in ENTITIES.items():
        quota = args.rows * sizes[name] // total
        table = cat.create_table(f"peer.{name}", schema=schema,
                                 properties={"write.parquet.compression-codec": "zstd"})
        reader = bronze[name].scan(
            selected_fields=("value", "source_position", "kafka_offset")).to_arrow_batch_reader()
        taken = 0
        pending = []
        for rb in reader:
            if taken >= quota:
                break
            rb = rb.slice(0, quota - taken)
            taken += rb.num_rows
            pending.append(rb)
            if sum(b.num_rows for b in pending) < args.batch and taken < quota:
                continue
            newest, bad = refine(pa.Table.from_batches(pending), typer)
            pending = []
            rejects += bad
            upserts = [r for _, r in newest.values() if r is not None]
            deletes = [k for k, (_, r) in newest.items() if r is None]
            if upserts:
                table.upsert(pa.Table.from_pylist(upserts, schema=schema), join_cols=["id"])
            if deletes:
                table.delete(In("id", deletes))
        done += taken
    seconds = time.monotonic() - started
    cpu = time.process_time() - cpu0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": done, "rejects": rejects, "seconds": seconds, "cpu_seconds": cpu,
                      "max_rss_mib": rss}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
