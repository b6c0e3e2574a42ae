"""Gold, read by pyiceberg, against the same tables recomputed by DuckDB in one
SQL query per table over Silver (also read by pyiceberg).

    gold_check.py <sqlalchemy-url> <catalog-name> <warehouse> <gold-definitions.toml>

Prints one JSON object: per Gold table, the rows in Gold, the rows DuckDB
computes, and the rows that differ (missing, extra, or a measure that is not
equal; doubles compare with a relative tolerance of 1e-9, everything else
exactly).
"""

import json
import sys
import tomllib

import duckdb
from pyiceberg.catalog.sql import SqlCatalog


def window_start(window, column):
    if window == "day":
        return f"CAST({column} AS DATE)"
    return f"CAST(date_trunc('{window}', {column}) AS DATE)"


def measure_sql(m):
    col = m.get("column")
    fn = m["fn"]
    if fn == "count":
        return f"count({col})" if col else "count(*)"
    if fn == "count_distinct":
        return f"count(DISTINCT {col})"
    return f"{fn}({col})"


def expected_sql(rollup, source):
    groups = [f'"{g}"' for g in rollup.get("group_by", [])]
    measures = [f'{measure_sql(m)} AS "{m["name"]}"' for m in rollup["measure"]]
    where = f'{rollup["time"]} IS NOT NULL'
    if rollup.get("filter"):
        where += f' AND ({rollup["filter"]})'
    parts = []
    for w in rollup["windows"]:
        cols = [f"'{w}' AS \"window\"", f'{window_start(w, rollup["time"])} AS window_start'] + groups + measures
        group_by = ["1", "2"] + groups
        parts.append(f"SELECT {', '.join(cols)} FROM {source} WHERE {where} GROUP BY {', '.join(group_by)}")
    return " UNION ALL ".join(parts)


def main():
    url, name, warehouse, definitions = sys.argv[1:5]
    catalog = SqlCatalog(name, uri=url, warehouse=warehouse)
    with open(definitions, "rb") as f:
        rollups = tomllib.load(f).get("rollup", [])
    con = duckdb.connect()
    out = {}
    for r in rollups:
        source = catalog.load_table(f"silver.{r['source']}").scan().to_arrow()
        gold = catalog.load_table(f"gold.{r['name']}").scan().to_arrow()
        con.register("silver_src", source)
        con.register("gold_tbl", gold)
        con.execute(f"CREATE OR REPLACE TEMP TABLE expected AS {expected_sql(r, 'silver_src')}").fetchall()
        keys = ["window", "window_start"] + list(r.get("group_by", []))
        on = " AND ".join(f'g."{k}" IS NOT DISTINCT FROM e."{k}"' for k in keys)
        diffs = []
        for m in r["measure"]:
            n = m["name"]
            if m["fn"] == "avg":
                diffs.append(
                    f'(g."{n}" IS NULL) <> (e."{n}" IS NULL) OR '
                    f'abs(g."{n}" - e."{n}") > 1e-9 * greatest(1, abs(e."{n}"))'
                )
            else:
                diffs.append(f'g."{n}" IS DISTINCT FROM e."{n}"')
        key_null = " AND ".join(f'g."{k}" IS NULL' for k in keys[:2])
        ekey_null = " AND ".join(f'e."{k}" IS NULL' for k in keys[:2])
        bad = con.execute(
            f"SELECT g.*, e.* FROM gold_tbl g FULL OUTER JOIN expected e ON {on} "
            f"WHERE ({key_null}) OR ({ekey_null}) OR {' OR '.join(f'({d})' for d in diffs)}"
        ).fetchall()
        dup = con.execute(
            f"SELECT count(*) FROM (SELECT {', '.join(chr(34) + k + chr(34) for k in keys)} FROM gold_tbl "
            f"GROUP BY ALL HAVING count(*) > 1)"
        ).fetchall()[0][0]
        out[r["name"]] = {
            "gold_rows": gold.num_rows,
            "expected_rows": con.execute("SELECT count(*) FROM expected").fetchall()[0][0],
            "silver_rows": source.num_rows,
            "duplicate_keys": dup,
            "differing": len(bad),
            "examples": [str(row) for row in bad[:5]],
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
