"""The Python peer of the Bronze benchmark: confluent-kafka + pyarrow +
pyiceberg appending the same events from the same broker, in batches.

It does the same work per event as bronze-ingestor, written the
straightforward way: the same 23 Bronze columns (verbatim key/value, the
Debezium envelope fields decoded with `json.loads`, Kafka coordinates and
headers, audit columns, MD5 of the value) into tables partitioned by
day(ingestion_timestamp), Parquet with Snappy; one pyiceberg append per
table per 50k-event batch. It does not fence or record offsets in the
snapshot (exactly-once is extra work only the Rust worker does).

`--minimal` is the lighter shape earlier runs measured, kept for reference:
7 columns (key, value, topic, partition, offset, ingestion time, MD5), no
envelope decoding, unpartitioned tables.
Prints one JSON object: events, seconds, cpu_seconds, max_rss_mib.
"""
import argparse
import datetime
import hashlib
import json
import resource
import sys
import time

import pyarrow as pa
from confluent_kafka import Consumer
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import DayTransform
from pyiceberg.types import (BinaryType, IntegerType, LongType, NestedField, StringType,
                             TimestamptzType)

# (name, iceberg type, arrow type, required): the Bronze layout, in field-id order.
COLUMNS = [
    ("key", StringType(), pa.string(), False),
    ("value", StringType(), pa.string(), False),
    ("key_bytes", BinaryType(), pa.large_binary(), False),
    ("value_bytes", BinaryType(), pa.large_binary(), False),
    ("event_kind", StringType(), pa.string(), True),
    ("op", StringType(), pa.string(), False),
    ("ts_ms", LongType(), pa.int64(), False),
    ("source_ts_ms", LongType(), pa.int64(), False),
    ("source_connector", StringType(), pa.string(), False),
    ("source_db", StringType(), pa.string(), False),
    ("source_schema", StringType(), pa.string(), False),
    ("source_table", StringType(), pa.string(), False),
    ("source_position", StringType(), pa.string(), False),
    ("decode_error", StringType(), pa.string(), False),
    ("kafka_topic", StringType(), pa.string(), True),
    ("kafka_partition", IntegerType(), pa.int32(), True),
    ("kafka_offset", LongType(), pa.int64(), True),
    ("kafka_timestamp", TimestamptzType(), pa.timestamp("us", tz="UTC"), False),
    ("kafka_headers", StringType(), pa.string(), False),
    ("ingestion_timestamp", TimestamptzType(), pa.timestamp("us", tz="UTC"), True),
    ("source_system", StringType(), pa.string(), True),
    ("source_file", StringType(), pa.string(), True),
    ("record_hash", StringType(), pa.string(), False),
]
NAMES = [c[0] for c in COLUMNS]
ICEBERG_SCHEMA = Schema(*[NestedField(i + 1, n, t, required=r) for i, (n, t, _, r) in enumerate(COLUMNS)])
ARROW_SCHEMA = pa.schema([pa.field(n, a, nullable=not r) for n, _, a, r in COLUMNS])
MINIMAL = ["key", "value", "kafka_topic", "kafka_partition", "kafka_offset", "ingestion_timestamp", "record_hash"]
MINIMAL_ARROW = pa.schema([f for f in ARROW_SCHEMA if f.name in MINIMAL])
SPEC = PartitionSpec(PartitionField(source_id=NAMES.index("ingestion_timestamp") + 1, field_id=1000,
                                    transform=DayTransform(), name="ingestion_timestamp_day"))


def envelope(value):
    """(event_kind, op, ts_ms, source_ts_ms, connector, db, schema, table, position, error)"""
    if value is None:
        return ("tombstone",) + (None,) * 9
    try:
        d = json.loads(value)
    except ValueError as e:
        return ("undecodable",) + (None,) * 8 + (f"value is not JSON: {e}",)
    if isinstance(d, dict) and "schema" in d and "op" not in d:
        d = d.get("payload")
    if not isinstance(d, dict):
        return ("undecodable",) + (None,) * 8 + ("value is not a Debezium JSON object",)
    src = d.get("source") or {}
    if "lsn" in src:
        pos = f"lsn={src['lsn']}"
    elif "file" in src:
        pos = f"file={src['file']}" + (f",pos={src['pos']}" if src.get("pos") is not None else "")
    else:
        pos = None
    table = src.get("table") or src.get("collection")
    if "ddl" in d or "tableChanges" in d:
        kind = "schema_change"
    elif "op" in d:
        kind = "change"
    else:
        kind = "row"
    return (kind, d.get("op"), d.get("ts_ms"), src.get("ts_ms"), src.get("connector"), src.get("db"),
            src.get("schema"), table, pos, None)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--pattern", required=True)
    ap.add_argument("--events", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--batch", type=int, default=50_000)
    ap.add_argument("--minimal", action="store_true", help="7 columns, no envelope decoding, unpartitioned")
    args = ap.parse_args()

    catalog = SqlCatalog("peer", uri=f"sqlite:///{args.out}/catalog.db", warehouse=f"file://{args.out}/warehouse")
    catalog.create_namespace_if_not_exists("bronze")
    tables = {}
    consumer = Consumer({
        "bootstrap.servers": args.brokers,
        "group.id": f"bench-python-{time.time_ns()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "fetch.wait.max.ms": 10,
    })
    consumer.subscribe([args.pattern])
    n = 0
    started = None
    cpu0 = time.process_time()
    buffers = {}
    pending = 0

    def flush():
        for topic, cols in buffers.items():
            if not cols["key"]:
                continue
            name = "bronze." + topic.rsplit(".", 1)[-1]
            if name not in tables:
                props = {"write.parquet.compression-codec": "snappy"}
                if args.minimal:
                    tables[name] = catalog.create_table_if_not_exists(name, schema=MINIMAL_ARROW, properties=props)
                else:
                    tables[name] = catalog.create_table_if_not_exists(
                        name, schema=ICEBERG_SCHEMA, partition_spec=SPEC, properties=props)
            tables[name].append(pa.table(cols, schema=MINIMAL_ARROW if args.minimal else ARROW_SCHEMA))
        buffers.clear()

    deadline = time.time() + 900
    while n < args.events and time.time() < deadline:
        msgs = consumer.consume(num_messages=10_000, timeout=0.5)
        if msgs and started is None:
            started = time.time()
        now = datetime.datetime.now(datetime.timezone.utc)
        for m in msgs:
            if m.error():
                continue
            v = m.value()
            k = m.key()
            topic = m.topic()
            if args.minimal:
                cols = buffers.setdefault(topic, {c: [] for c in MINIMAL})
                cols["key"].append(k.decode() if k is not None else None)
                cols["value"].append(v.decode() if v is not None else None)
                cols["kafka_topic"].append(topic)
                cols["kafka_partition"].append(m.partition())
                cols["kafka_offset"].append(m.offset())
                cols["ingestion_timestamp"].append(now)
                cols["record_hash"].append(hashlib.md5(v).hexdigest() if v is not None else None)
                n += 1
                pending += 1
                continue
            cols = buffers.setdefault(topic, {c: [] for c in NAMES})
            cols["key"].append(k.decode() if k is not None else None)
            cols["value"].append(v.decode() if v is not None else None)
            cols["key_bytes"].append(None)
            cols["value_bytes"].append(None)
            for name, x in zip(NAMES[4:14], envelope(v)):
                cols[name].append(x)
            cols["kafka_topic"].append(topic)
            cols["kafka_partition"].append(m.partition())
            cols["kafka_offset"].append(m.offset())
            ts_type, ts = m.timestamp()
            cols["kafka_timestamp"].append(
                datetime.datetime.fromtimestamp(ts / 1000, datetime.timezone.utc) if ts_type else None)
            h = m.headers()
            cols["kafka_headers"].append(json.dumps([[hk, hv.decode() if hv is not None else None] for hk, hv in h])
                                         if h else None)
            cols["ingestion_timestamp"].append(now)
            cols["source_system"].append(topic.split(".", 1)[0])
            cols["source_file"].append(f"{topic}/{m.partition()}/{m.offset()}")
            cols["record_hash"].append(hashlib.md5(v).hexdigest() if v is not None else None)
            n += 1
            pending += 1
        if pending >= args.batch:
            flush()
            pending = 0
    flush()
    secs = time.time() - (started or time.time())
    consumer.close()
    out = {
        "events": n,
        "seconds": secs,
        "cpu_seconds": time.process_time() - cpu0,
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
