"""Gold, read by pyiceberg, against the same tables recomputed by DuckDB in
one SQL query per table over Silver (also read by pyiceberg): rollups, wide
(denormalized) tables, and feature tables. A Gold table read by another is
recomputed from the recomputed one, so every expectation rests on Silver
alone.

    gold_check.py <sqlalchemy-url> <catalog-name> <warehouse> <gold-definitions.toml> [--recompute-only]

With --recompute-only it only recomputes every Gold table from Silver and prints
the seconds that took (reading Silver with pyiceberg included, and apart), for
tests/bench.sh gold.

Prints one JSON object: per Gold table, the rows in Gold, the rows DuckDB
computes, and the rows that differ (missing, extra, or a value that is not
equal; doubles compare with a relative tolerance of 1e-9, everything else
exactly). Every Gold table also reports its declared sort order (`sort_order`,
column names) and `unsorted_files`: data files whose rows are not in that
order (must be 0). Feature tables also report `leaks`: rows whose values equal what
they would be if events up to a week after the feature date counted, while
the point-in-time value differs (must be 0).
"""

import json
import sys
import time
import tomllib

import duckdb
import pyarrow.parquet as pq
from pyiceberg.catalog.sql import SqlCatalog


def q(name):
    return '"' + name + '"'


def window_start(window, column):
    if window == "day":
        return f"CAST({column} AS DATE)"
    return f"CAST(date_trunc('{window}', {column}) AS DATE)"


def measure_sql(m):
    col = m.get("column")
    fn = m["fn"]
    if fn == "count":
        return f"count({q(col)})" if col else "count(*)"
    if fn == "count_distinct":
        return f"count(DISTINCT {q(col)})"
    return f"{fn}({q(col)})"


def rollup_sql(rollup, source):
    groups = [q(g) for g in rollup.get("group_by", [])]
    measures = [f'{measure_sql(m)} AS {q(m["name"])}' for m in rollup["measure"]]
    time = q(rollup["time"])
    where = f"{time} IS NOT NULL"
    if rollup.get("filter"):
        where += f' AND ({rollup["filter"]})'
    parts = []
    for w in rollup["windows"]:
        cols = [f"'{w}' AS \"window\"", f"{window_start(w, time)} AS window_start"] + groups + measures
        group_by = ["1", "2"] + groups
        parts.append(f"SELECT {', '.join(cols)} FROM {source} WHERE {where} GROUP BY {', '.join(group_by)}")
    return " UNION ALL ".join(parts)


def pick(text):
    words = text.split()
    return (words[0], words[2]) if len(words) == 3 else (words[0], words[0])


def wide_sql(w, silver, keys):
    """Left joins of the fact with its dimensions, current values."""
    fact = silver(w["fact"])
    exprs = {}  # output column -> SQL expression
    order = []
    if "columns" in w:
        fact_cols = [pick(c) for c in w["columns"]]
    else:
        fact_cols = [(c, c) for c in fact["columns"] if not c.startswith("_")]
    for src, name in fact_cols:
        exprs[name] = f"f.{q(src)}"
        order.append(name)
    joins = []
    for i, j in enumerate(w.get("join", [])):
        dim = silver(j["entity"])
        alias = f"j{i}"
        key = keys(j["entity"])[0]
        joins.append(f"LEFT JOIN {dim['view']} {alias} ON {alias}.{q(key)} = {exprs[j['on']]}")
        for c in j["columns"]:
            src, name = pick(c)
            exprs[name] = f"{alias}.{q(src)}"
            order.append(name)
    for c in w.get("compute", []):
        a, op, b, _, name = c.split()
        operand = lambda t: exprs[t] if t in exprs else t  # noqa: E731
        exprs[name] = f"({operand(a)} {op} {operand(b)})"
        order.append(name)
    select = ", ".join(f"{exprs[n]} AS {q(n)}" for n in order)
    return f"SELECT {select} FROM {fact['view']} f {' '.join(joins)}", order


def first_date_sql(every, col):
    if every == "day":
        return col
    unit = "week" if every == "week" else "month"
    return (
        f"CASE WHEN CAST(date_trunc('{unit}', {col}) AS DATE) = {col} THEN {col} "
        f"ELSE CAST(date_trunc('{unit}', {col}) + INTERVAL 1 {unit} AS DATE) END"
    )


def features_sql(fs, source, shift=0):
    """Feature rows per key and feature date from events dated <= the date
    (+ `shift` days: a deliberately leaking variant, to detect leaks)."""
    key, time, every = q(fs["key"]), q(fs["time"]), fs["every"]
    cols = sorted({f["column"] for f in fs["feature"] if f.get("column")})
    ev_cols = "".join(f", {q(c)}" for c in cols)
    longest = max([f.get("days", 1) for f in fs["feature"]])
    step = {"day": "1 day", "week": "7 days", "month": "1 month"}[every]
    aggs = []
    names = {}
    for f in fs["feature"]:
        fn, col, n = f["fn"], f.get("column"), f["name"]
        if fn in ("days_since_last", "ratio"):
            continue
        within = f"ev.d > dt.fd + {shift} - {f['days']} AND ev.d <= dt.fd + {shift}"
        c = f"ev.{q(col)}" if col else "ev.d"
        expr = {
            "count": f"count({c}) FILTER (WHERE {within})",
            "count_distinct": f"count(DISTINCT {c}) FILTER (WHERE {within})",
            "sum": f"coalesce(sum({c}) FILTER (WHERE {within}), 0)",
            "avg": f"avg({c}) FILTER (WHERE {within})",
            "min": f"min({c}) FILTER (WHERE {within})",
            "max": f"max({c}) FILTER (WHERE {within})",
        }[fn]
        aggs.append(f"{expr} AS {q(n)}")
        names[n] = q(n)
    outer = []
    for f in fs["feature"]:
        n = f["name"]
        if f["fn"] == "days_since_last":
            outer.append(
                f"(a.fd - (SELECT max(e.d) FROM ev e WHERE e.k = a.k AND e.d <= a.fd + {shift})) AS {q(n)}"
            )
        elif f["fn"] == "ratio":
            num, den = f["of"]
            outer.append(f"CAST({q(num)} AS DOUBLE) / nullif(CAST({q(den)} AS DOUBLE), 0) AS {q(n)}")
        else:
            outer.append(q(n))
    label = ""
    if fs.get("label"):
        days = fs["label"]["days"]
        label = (
            f", CASE WHEN a.fd + {days} > (SELECT horizon FROM h) THEN NULL ELSE NOT EXISTS "
            f"(SELECT 1 FROM ev e WHERE e.k = a.k AND e.d > a.fd AND e.d <= a.fd + {days}) END "
            f"AS {q(fs['label']['name'])}"
        )
    return f"""
        WITH ev AS (SELECT {key} AS k, CAST({time} AS DATE) AS d{ev_cols} FROM {source}
                    WHERE {key} IS NOT NULL AND {time} IS NOT NULL),
        h AS (SELECT max(d) AS horizon FROM ev),
        firsts AS (SELECT k, min(d) AS first FROM ev GROUP BY k),
        dates AS (SELECT fk.k, CAST(s.s AS DATE) AS fd FROM firsts fk, h,
                  LATERAL (SELECT unnest(generate_series(CAST({first_date_sql(every, 'fk.first')} AS TIMESTAMP),
                                                         CAST(h.horizon AS TIMESTAMP), INTERVAL {step})) AS s) s),
        agg AS (SELECT dt.k, dt.fd{''.join(', ' + a for a in aggs)} FROM dates dt
                LEFT JOIN ev ON ev.k = dt.k AND ev.d <= dt.fd + {shift} AND ev.d > dt.fd + {shift} - {longest}
                GROUP BY dt.k, dt.fd)
        SELECT a.k AS {key}, a.fd AS feature_date, {', '.join(outer)}{label} FROM agg a
    """


def compare(con, gold_view, expected_view, keys, columns, floats):
    on = " AND ".join(f"g.{q(k)} IS NOT DISTINCT FROM e.{q(k)}" for k in keys)
    diffs = []
    for n in columns:
        if n in floats:
            diffs.append(
                f"(g.{q(n)} IS NULL) <> (e.{q(n)} IS NULL) OR "
                f"abs(g.{q(n)} - e.{q(n)}) > 1e-9 * greatest(1, abs(e.{q(n)}))"
            )
        else:
            diffs.append(f"g.{q(n)} IS DISTINCT FROM e.{q(n)}")
    key_null = " AND ".join(f"g.{q(k)} IS NULL" for k in keys)
    ekey_null = " AND ".join(f"e.{q(k)} IS NULL" for k in keys)
    where = f"({key_null}) OR ({ekey_null})"
    if diffs:
        where += " OR " + " OR ".join(f"({d})" for d in diffs)
    bad = con.execute(f"SELECT g.*, e.* FROM {gold_view} g FULL OUTER JOIN {expected_view} e ON {on} WHERE {where}").fetchall()
    dup = con.execute(
        f"SELECT count(*) FROM (SELECT {', '.join(q(k) for k in keys)} FROM {gold_view} GROUP BY ALL HAVING count(*) > 1)"
    ).fetchall()[0][0]
    return {
        "gold_rows": con.execute(f"SELECT count(*) FROM {gold_view}").fetchall()[0][0],
        "expected_rows": con.execute(f"SELECT count(*) FROM {expected_view}").fetchall()[0][0],
        "duplicate_keys": dup,
        "differing": len(bad),
        "examples": [str(row) for row in bad[:5]],
    }


def main():
    url, name, warehouse, definitions = sys.argv[1:5]
    recompute_only = "--recompute-only" in sys.argv[5:]
    started = time.perf_counter()
    scan_seconds = [0.0]
    catalog = SqlCatalog(name, uri=url, warehouse=warehouse)
    with open(definitions, "rb") as f:
        defs = tomllib.load(f)
    con = duckdb.connect()
    silver_cache = {}
    identifiers = {}

    def silver(entity):
        if entity not in silver_cache:
            t0 = time.perf_counter()
            table = catalog.load_table(f"silver.{entity}")
            rows = table.scan().to_arrow()
            scan_seconds[0] += time.perf_counter() - t0
            view = f"silver_{entity}"
            con.register(view, rows)
            identifiers[entity] = [table.schema().find_column_name(i) for i in table.schema().identifier_field_ids]
            silver_cache[entity] = {"view": view, "columns": rows.column_names, "rows": rows.num_rows}
        return silver_cache[entity]

    def keys(entity):
        silver(entity)
        return identifiers[entity] or ["id"]

    def gold(table):
        rows = catalog.load_table(f"gold.{table}").scan().to_arrow()
        con.register(f"gold_{table}", rows)
        return f"gold_{table}", rows.column_names

    def sort_check(table):
        """The declared sort order, and the data files whose rows are not in it."""
        t = catalog.load_table(f"gold.{table}")
        order = [t.schema().find_column_name(f.source_id) for f in t.sort_order().fields]
        unsorted = 0
        for task in t.scan().plan_files():
            path = task.file.file_path.removeprefix("file://")
            rows = pq.read_table(path, columns=order)
            by = [(c, "ascending") for c in order]
            if not rows.sort_by(by, null_placement="at_start").equals(rows):
                unsorted += 1
        return {"sort_order": order, "unsorted_files": unsorted}

    # Sources of rollups and feature tables: a Silver entity or an expected wide table.
    expected_views = {}

    def source(name):
        return expected_views.get(name) or silver(name)["view"]

    def source_rows(name):
        view = source(name)
        return con.execute(f"SELECT count(*) FROM {view}").fetchall()[0][0]

    out = {}
    for w in defs.get("wide", []):
        sql, columns = wide_sql(w, silver, keys)
        view = f"expected_{w['name']}"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {view} AS {sql}")
        expected_views[w["name"]] = view
        if recompute_only:
            continue
        gold_view, _ = gold(w["name"])
        key = keys(w["fact"])
        floats = {r[0] for r in con.execute(f"DESCRIBE {view}").fetchall() if r[1] in ("DOUBLE", "FLOAT")}
        out[w["name"]] = compare(con, gold_view, view, key, [c for c in columns if c not in key], floats)
        out[w["name"]]["silver_rows"] = silver(w["fact"])["rows"]
        out[w["name"]]["dimension_nulls"] = con.execute(
            f"SELECT count(*) FROM {gold_view} WHERE {q(w['join'][-1]['columns'][0].split()[-1])} IS NULL"
        ).fetchall()[0][0] if w.get("join") else 0
    for fs in defs.get("features", []):
        view = f"expected_{fs['name']}"
        src = source(fs["source"])
        con.execute(f"CREATE OR REPLACE TEMP TABLE {view} AS {features_sql(fs, src)}")
        if recompute_only:
            continue
        con.execute(f"CREATE OR REPLACE TEMP TABLE leaky_{fs['name']} AS {features_sql(fs, src, shift=7)}")
        gold_view, columns = gold(fs["name"])
        keys_ = [fs["key"], "feature_date"]
        values = [c for c in columns if c not in keys_]
        floats = {f["name"] for f in fs["feature"] if f["fn"] in ("avg", "ratio")}
        out[fs["name"]] = compare(con, gold_view, view, keys_, values, floats)
        out[fs["name"]]["silver_rows"] = source_rows(fs["source"])
        # A leak: a row matching the leaky variant where the point-in-time one differs.
        on = " AND ".join(f"g.{q(k)} = x.{q(k)}" for k in keys_)
        same = " AND ".join(f"g.{q(c)} IS NOT DISTINCT FROM x.{q(c)}" for c in values if c not in floats)
        differs = " OR ".join(f"e.{q(c)} IS DISTINCT FROM x.{q(c)}" for c in values if c not in floats)
        out[fs["name"]]["leaks"] = con.execute(
            f"SELECT count(*) FROM {gold_view} g JOIN leaky_{fs['name']} x ON {on} "
            f"JOIN {view} e ON e.{q(fs['key'])} = x.{q(fs['key'])} AND e.feature_date = x.feature_date "
            f"WHERE {same} AND ({differs})"
        ).fetchall()[0][0]
        out[fs["name"]]["leaky_rows_differing"] = con.execute(
            f"SELECT count(*) FROM {view} e JOIN leaky_{fs['name']} x ON e.{q(fs['key'])} = x.{q(fs['key'])} "
            f"AND e.feature_date = x.feature_date WHERE {differs}"
        ).fetchall()[0][0]
    for r in defs.get("rollup", []):
        view = f"expected_{r['name']}"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {view} AS {rollup_sql(r, source(r['source']))}")
        if recompute_only:
            continue
        gold_view, _ = gold(r["name"])
        keys_ = ["window", "window_start"] + list(r.get("group_by", []))
        measures = [m["name"] for m in r["measure"]]
        floats = {m["name"] for m in r["measure"] if m["fn"] == "avg"}
        out[r["name"]] = compare(con, gold_view, view, keys_, measures, floats)
        out[r["name"]]["silver_rows"] = source_rows(r["source"])
    for table in out:
        out[table].update(sort_check(table))
    if recompute_only:
        total = time.perf_counter() - started
        out = {"recompute_seconds": total, "silver_scan_seconds": scan_seconds[0], "sql_seconds": total - scan_seconds[0]}
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
