#!/usr/bin/env python3
"""Writes the Parquet and CSV ledger fixtures of tests/fixtures/ledgers/ with other tools than
jobpoints, so the tests read files as data teams make them.

From `mixed.jsonl` (48 image and LLM jobs, both job shapes, nulls, invalid ones):
  mixed.parquet         pyarrow: nested structs (`model_input.SD.width`), nanosecond UTC
                        timestamps, nullable int64 columns, snappy.
  mixed_dotted.parquet  DuckDB: flat columns with dotted names (`"model_input.SD.width"`),
                        TIMESTAMP WITH TIME ZONE (microseconds), zstd.
  mixed.csv             DuckDB: the same flat table as CSV with a header; NULL is an empty cell.
And bad rows, each of which must be one `invalid` result naming row and column:
  bad.parquet           pyarrow: a float width (512.0: not an integer, as in JSON), NaN
                        (pandas' missing value: absent) and infinity, a model that is binary
                        and not UTF-8; decimal and date columns no rule reads.

Run: python3 -m venv .venv && .venv/bin/pip install pyarrow duckdb
     .venv/bin/python scripts/make-ledger-fixtures.py
The versions used are written to tests/fixtures/ledgers/PROVENANCE.md.
"""

import datetime as dt
import decimal
import json
import pathlib
import sys

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

HERE = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "ledgers"
JOBS = [json.loads(line) for line in (HERE / "mixed.jsonl").read_text().splitlines()]


def utc(text):
    return None if text is None else dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def nested_table():
    """Both job shapes in one table: nested struct for the network's shape, nulls elsewhere."""
    sd = pa.struct([("width", pa.int64()), ("height", pa.int64()), ("num_iterations", pa.int64())])
    cols = {
        "id": pa.string(), "job_id": pa.string(), "model": pa.string(), "model_id": pa.string(),
        "miner": pa.string(), "miner_id": pa.string(),
        "completed_at": pa.timestamp("ns", tz="UTC"),
        "width": pa.int64(), "height": pa.int64(), "steps": pa.int64(),
        "input_tokens": pa.int64(), "output_tokens": pa.int64(),
        "model_input": pa.struct([("SD", sd)]),
    }
    rows = []
    for j in JOBS:
        row = {k: j.get(k) for k in cols}
        row["completed_at"] = utc(j.get("completed_at"))
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=pa.schema(list(cols.items())))


def flat_rows():
    out = []
    for j in JOBS:
        sd = j.get("model_input", {}).get("SD", {})
        out.append({
            "id": j.get("id"), "job_id": j.get("job_id"), "model": j.get("model"),
            "model_id": j.get("model_id"), "miner": j.get("miner"), "miner_id": j.get("miner_id"),
            "completed_at": j.get("completed_at"),
            "width": j.get("width"), "height": j.get("height"), "steps": j.get("steps"),
            "input_tokens": j.get("input_tokens"), "output_tokens": j.get("output_tokens"),
            "model_input.SD.width": sd.get("width"), "model_input.SD.height": sd.get("height"),
            "model_input.SD.num_iterations": sd.get("num_iterations"),
        })
    return out


def main():
    pq.write_table(nested_table(), HERE / "mixed.parquet", compression="snappy")

    con = duckdb.connect()
    flat = pa.Table.from_pylist(flat_rows())
    con.register("flat", flat)
    con.execute("SET TimeZone = 'UTC'")
    select = """
        SELECT id, job_id, model, model_id, miner, miner_id,
               CAST(completed_at AS TIMESTAMPTZ) AS completed_at,
               CAST(width AS BIGINT) AS width, CAST(height AS BIGINT) AS height,
               CAST(steps AS BIGINT) AS steps, CAST(input_tokens AS BIGINT) AS input_tokens,
               CAST(output_tokens AS BIGINT) AS output_tokens,
               CAST("model_input.SD.width" AS BIGINT) AS "model_input.SD.width",
               CAST("model_input.SD.height" AS BIGINT) AS "model_input.SD.height",
               CAST("model_input.SD.num_iterations" AS BIGINT) AS "model_input.SD.num_iterations"
        FROM flat"""
    con.execute(f"COPY ({select}) TO '{HERE / 'mixed_dotted.parquet'}' (FORMAT PARQUET, COMPRESSION ZSTD)")
    # In CSV the time stays the text of the JSONL (DuckDB would write `+00` offsets).
    csv_select = select.replace("CAST(completed_at AS TIMESTAMPTZ)", "completed_at")
    con.execute(f"COPY ({csv_select}) TO '{HERE / 'mixed.csv'}' (HEADER, DELIMITER ',')")

    bad = pa.table({
        "id": ["float-width", "nan-width", "inf-width", "binary-model", "float-width-2"],
        "model": pa.array([b"BrainDance", b"BrainDance", b"BrainDance", b"Brain\xffDance", b"BrainDance"], pa.binary()),
        "width": pa.array([512.0, float("nan"), float("inf"), 512.0, 512.0]),
        "height": pa.array([512, 512, 512, 512, 512], pa.int64()),
        "steps": pa.array([20, 20, 20, 20, 20], pa.int32()),
        "fee": pa.array([decimal.Decimal("1.50")] * 5, pa.decimal128(10, 2)),
        "day": pa.array([dt.date(2024, 5, 1)] * 5, pa.date32()),
    })
    pq.write_table(bad, HERE / "bad.parquet")

    (HERE / "PROVENANCE.md").write_text(f"""# Ledger fixtures

Made by `scripts/make-ledger-fixtures.py` from `mixed.jsonl` with pyarrow {pa.__version__} and
DuckDB {duckdb.__version__} (Python {sys.version.split()[0]}), not by jobpoints: `mixed.parquet`
and `bad.parquet` by pyarrow, `mixed_dotted.parquet` and `mixed.csv` by DuckDB. `bad.csv` is
written by hand. Re-run the script to remake them; the tests compare every format's results
with `mixed.jsonl`'s.
""")


if __name__ == "__main__":
    main()
