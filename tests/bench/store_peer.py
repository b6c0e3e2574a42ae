#!/usr/bin/env python3
"""The store benchmark's workload written by pypaimon (the peer of `tests/bench/store.sh`).

store_peer.py <warehouse> <rows> [commit_rows]

The same table and rows as changelog-store/examples/store_bench.rs: an int64 key + 20
short strings (decimal renderings of random u32s), 30% updates of existing keys, 5%
deletes, keys in random order (the same xorshift64 stream and key bijection), 4 buckets,
Paimon's defaults otherwise, a commit every `commit_rows` (default 100,000, the
streaming cadence). pypaimon takes deletes through `rowkind.field`, so its table has one
more short column, `op` ("+I" / "-D").

Only pypaimon's work is timed (write_arrow, prepare_commit, commit: CPU seconds of this
process); generating the rows in Python is not. pypaimon does not compact: afterwards the
data files of the table's latest snapshot are counted with their LSM levels (untimed), so
the line shows what work it did. Prints one line:
BENCH store_pypaimon rows=… upserts_per_s=… per_core=… files=… level0_files=…
"""
import sys
import tempfile
import time

import pyarrow as pa
from pypaimon import CatalogFactory, Schema

MASK = (1 << 64) - 1
K = 0x9E3779B97F4A7C15


class Rng:
    def __init__(self, seed):
        self.s = seed

    def next(self):
        s = self.s
        s ^= (s << 13) & MASK
        s ^= s >> 7
        s ^= (s << 17) & MASK
        self.s = s
        return s


def key_of(n):
    k = (n * K) & MASK
    return k - (1 << 64) if k >= 1 << 63 else k


def main():
    warehouse = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()
    rows = int(sys.argv[2].replace("_", "")) if len(sys.argv) > 2 else 1_000_000
    per_commit = int(sys.argv[3].replace("_", "")) if len(sys.argv) > 3 else 100_000
    fields = [pa.field("id", pa.int64(), nullable=False)] + [(f"c{i}", pa.string()) for i in range(20)]
    pa_schema = pa.schema(fields + [("op", pa.string())])
    catalog = CatalogFactory.create({"warehouse": warehouse})
    catalog.create_database("bench", True)
    options = {"bucket": "4", "file.format": "parquet", "rowkind.field": "op"}
    catalog.create_table("bench.t", Schema.from_pyarrow_schema(pa_schema, primary_keys=["id"], options=options), False)
    table = catalog.get_table("bench.t")
    wb = table.new_batch_write_builder()

    rng = Rng(0x9E3779B97F4A7C15)
    inserted = 0
    timed_cpu = 0.0
    timed_wall = 0.0
    commit_id = 0
    done = 0
    while done < rows:
        n_rows = min(per_commit, rows - done)
        ids, ops = [], []
        cols = [[] for _ in range(20)]
        for _ in range(n_rows):
            r = rng.next() % 100
            if r < 5 and inserted > 0:
                n, op = rng.next() % inserted, "-D"
            elif r < 35 and inserted > 0:
                n, op = rng.next() % inserted, "+I"
            else:
                n, op = inserted, "+I"
                inserted += 1
            ids.append(key_of(n))
            ops.append(op)
            for c in cols:
                c.append(str(rng.next() & 0xFFFFFFFF))
        data = pa.Table.from_arrays([pa.array(ids, pa.int64())] + [pa.array(c, pa.string()) for c in cols]
                                    + [pa.array(ops, pa.string())], schema=pa_schema)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        w = wb.new_write()
        c = wb.new_commit()
        w.write_arrow(data)
        c.commit(w.prepare_commit())
        w.close()
        c.close()
        timed_cpu += time.process_time() - cpu0
        timed_wall += time.perf_counter() - wall0
        commit_id += 1
        done += n_rows
    print(f"pypaimon: {rows} rows in {commit_id} commits, {timed_wall:.1f} s wall, {timed_cpu:.1f} s CPU in pypaimon",
          file=sys.stderr)
    files = [f for split in table.new_read_builder().new_scan().plan().splits() for f in split.files]
    level0 = sum(1 for f in files if f.level == 0)
    print(f"BENCH store_pypaimon rows={rows} upserts_per_s={rows / timed_wall:.0f} per_core={rows / timed_cpu:.0f}"
          f" files={len(files)} level0_files={level0}")


if __name__ == "__main__":
    main()
