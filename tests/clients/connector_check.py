"""mysql-connector-python (pure Python) through Sluice: text and server-side prepared
statements, transactions and errors."""
import sys

import mysql.connector

port = int(sys.argv[1])
conn = mysql.connector.connect(host="127.0.0.1", port=port, user="app", password="app_pw",
                               database="sluice_test", use_pure=True, autocommit=True)
cur = conn.cursor()
cur.execute("SELECT 1 + %s, %s", (41, "x"))
assert cur.fetchone() == (42, "x")
t = f"conn_{port}"
cur.execute(f"DROP TABLE IF EXISTS {t}")
cur.execute(f"CREATE TABLE {t} (id INT AUTO_INCREMENT PRIMARY KEY, s VARCHAR(20), f DOUBLE, n INT NULL)")
pcur = conn.cursor(prepared=True)
for i in range(20):
    pcur.execute(f"INSERT INTO {t} (s, f, n) VALUES (?, ?, ?)", (f"s{i}", i / 4, None if i % 2 else i))
pcur.execute(f"SELECT COUNT(*), SUM(f) FROM {t} WHERE n IS NULL AND s LIKE ?", ("s%",))
count, total = pcur.fetchone()
assert count == 10 and abs(total - 25.0) < 1e-9, (count, total)
conn.start_transaction()
cur.execute(f"UPDATE {t} SET s = 'changed'")
assert cur.rowcount == 20
conn.rollback()
cur.execute(f"SELECT COUNT(*) FROM {t} WHERE s = 'changed'")
assert cur.fetchone() == (0,)
try:
    cur.execute(f"INSERT INTO {t} (id) VALUES (1)")
    raise AssertionError("expected duplicate key")
except mysql.connector.Error as e:
    assert e.errno == 1062, e
cur.execute(f"DROP TABLE {t}")
pcur.close()
conn.close()
print("ALL OK")
