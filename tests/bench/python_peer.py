"""The Python peer of the Bronze benchmark: confluent-kafka + pyarrow +
pyiceberg appending the same events from the same broker, in batches.

One pyiceberg append per table per 50k-event batch, Bronze-like columns
(raw key/value, Kafka coordinates, ingestion timestamp, MD5 of the value).
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

SCHEMA = pa.schema([
    ("key", pa.string()),
    ("value", pa.string()),
    ("kafka_topic", pa.string()),
    ("kafka_partition", pa.int32()),
    ("kafka_offset", pa.int64()),
    ("ingestion_timestamp", pa.timestamp("us", tz="UTC")),
    ("record_hash", pa.string()),
])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--pattern", required=True)
    ap.add_argument("--events", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--batch", type=int, default=50_000)
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
                tables[name] = catalog.create_table_if_not_exists(name, schema=SCHEMA)
            tables[name].append(pa.table(cols, schema=SCHEMA))
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
            cols = buffers.setdefault(m.topic(), {c: [] for c in SCHEMA.names})
            cols["key"].append(k.decode() if k is not None else None)
            cols["value"].append(v.decode() if v is not None else None)
            cols["kafka_topic"].append(m.topic())
            cols["kafka_partition"].append(m.partition())
            cols["kafka_offset"].append(m.offset())
            cols["ingestion_timestamp"].append(now)
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
