"""mysql-connector-python with a latin1 connection and server-side prepared statements,
through Sluice: a statement whose text holds a latin1 byte (0xE4, 'ä') is executed again
while other clients hold the backend connection it was prepared on, so Sluice prepares it
again on another one. Each execute must see the byte the client sent (HEX 'E4'), as directly.
Usage: connector_latin1_reprepare.py PORT"""
import sys
import threading
import time

import mysql.connector

port = int(sys.argv[1])


def connect(**kw):
    return mysql.connector.connect(host="127.0.0.1", port=port, user="app", password="app_pw",
                                   database="sluice_test", use_pure=True, autocommit=True, **kw)


conn = connect(charset="latin1", collation="latin1_swedish_ci")
pcur = conn.cursor(prepared=True)
sql = "SELECT HEX('\u00e4'), HEX(?), @@character_set_client"
pcur.execute(sql, ("\u00e4",))
first = pcur.fetchone()
assert first == ("E4", "E4", "latin1"), first
for round in range(3):
    sleepers = [connect() for _ in range(3)]
    threads = [threading.Thread(target=lambda c=c: c.cursor().execute("SELECT SLEEP(0.4)")) for c in sleepers]
    for t in threads:
        t.start()
    time.sleep(0.1)
    pcur.execute(sql, ("\u00e4",))
    again = pcur.fetchone()
    assert again == first, (round, again)
    for t in threads:
        t.join()
    for c in sleepers:
        c.close()
print("ALL OK")
