"""PyMySQL through Sluice: queries, parameters, transactions, errors, multi-results."""
import sys

import pymysql

port = int(sys.argv[1])
conn = pymysql.connect(host="127.0.0.1", port=port, user="app", password="app_pw",
                       database="sluice_test", autocommit=True,
                       client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
cur = conn.cursor()
cur.execute("SELECT 1 + %s, %s, %s", (41, "héllo", None))
assert cur.fetchone() == (42, "héllo", None)
t = f"py_{port}"
cur.execute(f"DROP TABLE IF EXISTS {t}")
cur.execute(f"CREATE TABLE {t} (id INT AUTO_INCREMENT PRIMARY KEY, v DECIMAL(10,2), d DATETIME)")
cur.executemany(f"INSERT INTO {t} (v, d) VALUES (%s, %s)", [(1.5, "2024-01-02 03:04:05"), (2.25, None)])
assert cur.rowcount == 2
conn.begin()
cur.execute(f"INSERT INTO {t} (v) VALUES (9)")
last = cur.lastrowid
conn.rollback()
cur.execute(f"SELECT COUNT(*) FROM {t} WHERE id = %s", (last,))
assert cur.fetchone() == (0,), "rolled-back row is visible"
cur.execute(f"SELECT SUM(v) FROM {t}")
assert str(cur.fetchone()[0]) == "3.75"
try:
    cur.execute("SELECT * FROM no_such_table_py")
    raise AssertionError("expected an error")
except pymysql.err.ProgrammingError as e:
    assert e.args[0] == 1146, e
cur.execute("SELECT 1; SELECT 2")
assert cur.fetchall() == ((1,),)
assert cur.nextset()
assert cur.fetchall() == ((2,),)
cur.execute(f"DROP TABLE {t}")
conn.ping()
conn.close()
print("ALL OK")
