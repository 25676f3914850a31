"""The JSON lines of tpmm-bench runs, grouped for the summaries of this directory."""
import json


def lines(files):
    for f in files:
        for line in open(f):
            if line.startswith("{"):
                yield json.loads(line)


def by_point_and_build(files, key):
    """{key(line): {build: [lines in file order]}}."""
    rows = {}
    for r in lines(files):
        rows.setdefault(key(r), {}).setdefault(r["build"], []).append(r)
    return rows
