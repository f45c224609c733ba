"""Real Delta tables for Clyra's `_delta_log` reader (crates/clyra-warehouse/tests/delta.rs).

Usage: delta_tables.py OUT_DIR [TABLE ...]     (tables: lifecycle, partitioned, cleaned)
       delta_tables.py check                  (exits 0 when deltalake and pyarrow import)

Writes each table under OUT_DIR/<table> with the `deltalake` package (delta-rs), then prints one
JSON document on stdout describing what Python sees, version by version:
  {"deltalake": "<version>", "tables": {"<table>": {"path": ..., "latest": N, "versions": [
     {"version": v, "sha256": <hashlib of the commit file>, "bytes": n, "operation": ...,
      "metrics": <operationMetrics from DeltaTable.history()>, "num_rows": <rows read>}]}}}
`num_rows` comes from reading the data (`to_pyarrow_table().num_rows`): the Rust side compares it
with the row count Clyra derives from the log alone. Versions whose JSON commit was cleaned up
are listed with `"sha256": null` and `"num_rows": null`.
"""

import hashlib
import json
import os
import sys
import time

import deltalake
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake


def ids(*values):
    return pa.array(values, pa.int64())


def lifecycle(path):
    # v0 create, v1 append, v2 delete with a predicate, v3 update, v4 merge,
    # v5 append that adds a column (schema evolution), v6 overwrite.
    write_deltalake(path, pa.table({"id": ids(1, 2, 3), "name": ["a", "b", "c"]}))
    write_deltalake(path, pa.table({"id": ids(4, 5), "name": ["d", "e"]}), mode="append")
    DeltaTable(path).delete("id = 2")
    DeltaTable(path).update(updates={"name": "'z'"}, predicate="id = 3")
    source = pa.table({"id": ids(3, 6), "name": ["m", "n"]})
    (
        DeltaTable(path)
        .merge(source=source, predicate="t.id = s.id", source_alias="s", target_alias="t")
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute()
    )
    write_deltalake(
        path,
        pa.table({"id": ids(10, 11), "name": ["x", "y"], "score": pa.array([1.5, None])}),
        mode="append",
        schema_mode="merge",
    )
    write_deltalake(
        path,
        pa.table({"id": ids(7), "name": ["q"], "score": pa.array([2.0])}),
        mode="overwrite",
    )


def partitioned(path):
    # Several files per commit: one per partition; then a delete inside one partition.
    rows = pa.table(
        {
            "id": ids(*range(1, 13)),
            "region": ["eu", "us", "apac"] * 4,
        }
    )
    write_deltalake(path, rows, partition_by=["region"])
    write_deltalake(
        path, pa.table({"id": ids(13, 14), "region": ["eu", "latam"]}), mode="append"
    )
    DeltaTable(path).delete("region = 'us' AND id > 5")


def cleaned(path):
    # Five commits, a checkpoint at version 4, then log cleanup with zero retention: the JSON
    # commits below the checkpoint are removed, as retention does on long-lived tables.
    config = {"delta.logRetentionDuration": "interval 0 seconds"}
    write_deltalake(path, pa.table({"id": ids(1)}), configuration=config)
    for v in range(2, 6):
        write_deltalake(path, pa.table({"id": ids(v)}), mode="append")
    dt = DeltaTable(path)
    dt.create_checkpoint()
    time.sleep(0.05)
    dt.cleanup_metadata()
    write_deltalake(path, pa.table({"id": ids(6)}), mode="append")


BUILDERS = {"lifecycle": lifecycle, "partitioned": partitioned, "cleaned": cleaned}


def describe(path):
    log = os.path.join(path, "_delta_log")
    dt = DeltaTable(path)
    latest = dt.version()
    history = {h["version"]: h for h in dt.history()}
    versions = []
    for v in range(latest + 1):
        commit = os.path.join(log, "%020d.json" % v)
        entry = {"version": v, "sha256": None, "bytes": None, "num_rows": None}
        if os.path.exists(commit):
            data = open(commit, "rb").read()
            entry["sha256"] = hashlib.sha256(data).hexdigest()
            entry["bytes"] = len(data)
            entry["num_rows"] = DeltaTable(path, version=v).to_pyarrow_table().num_rows
        h = history.get(v)
        if h is not None:
            entry["operation"] = h.get("operation")
            entry["metrics"] = h.get("operationMetrics")
            entry["timestamp"] = h.get("timestamp")
        versions.append(entry)
    return {"path": path, "latest": latest, "versions": versions}


def main(argv):
    if argv[1:] == ["check"]:
        print(json.dumps({"deltalake": deltalake.__version__, "pyarrow": pa.__version__}))
        return 0
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = argv[1]
    names = argv[2:] or sorted(BUILDERS)
    tables = {}
    for name in names:
        if name not in BUILDERS:
            print("unknown table %r; known: %s" % (name, ", ".join(sorted(BUILDERS))), file=sys.stderr)
            return 2
        path = os.path.join(out, name)
        BUILDERS[name](path)
        tables[name] = describe(path)
    json.dump({"deltalake": deltalake.__version__, "tables": tables}, sys.stdout, sort_keys=True)
    return 0


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter finalization: under load, delta-rs/arrow worker threads still being torn
    # down at exit abort the process ("terminate called without an active exception", exit 134)
    # after all output was written (seen 2 times in 48 parallel runs). Everything is flushed above.
    os._exit(code)
