"""PyMySQL against Sluice's SQL admin interface: typed result sets and the read role.

    pymysql_admin.py PORT USER PASSWORD     prints one line per check; exits non-zero on failure
"""
import sys

import pymysql

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
conn = pymysql.connect(host="127.0.0.1", port=port, user=user, password=password)
cur = conn.cursor(pymysql.cursors.DictCursor)
cur.execute("SHOW SLUICE BACKENDS")
rows = cur.fetchall()
assert rows, "no backends"
for r in rows:
    assert isinstance(r["up"], int) and r["up"] in (0, 1), r
    assert isinstance(r["effective_weight"], float), r
    assert isinstance(r["addr"], str) and ":" in r["addr"], r
    assert r["lag_ms"] is None or isinstance(r["lag_ms"], int), r
print("backends", len(rows), "typed")
cur.execute("SHOW SLUICE DIGESTS ORDER BY count DESC LIMIT 3")
digests = cur.fetchall()
for d in digests:
    assert isinstance(d["count"], int) and isinstance(d["p99_us"], int), d
    assert d["p50_us"] <= d["p99_us"] <= d["max_us"] * 1.07 + 1, d
print("digests", len(digests), "typed")
cur.execute("SHOW SLUICE VERSION")
print("version", cur.fetchone()["version"])
try:
    cur.execute("SLUICE PAUSE")
    print("pause allowed")
except pymysql.err.OperationalError as e:
    print("pause refused", e.args[0])
conn.close()
