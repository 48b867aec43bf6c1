"""PyMySQL over TLS through Sluice, verifying the certificate against the test's CA.

    pymysql_tls.py check PORT CA        one login, prints the TLS version and a small result
    pymysql_tls.py serial PORT CA       prints the serial of the certificate Sluice presented
    pymysql_tls.py hold PORT CA N       opens N connections, prints "ready N serial S", waits
                                        for a line on stdin, then checks that each still answers
"""
import ssl
import sys

import pymysql


def connect(port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    return pymysql.connect(host="127.0.0.1", port=int(port), user="app", password="app_pw",
                           database="sluice_test", ssl=ctx)


def serial(conn):
    return int(conn._sock.getpeercert()["serialNumber"], 16)


def main():
    mode, port, ca = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "check":
        c = connect(port, ca)
        with c.cursor() as cur:
            cur.execute("SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3")
            rows = cur.fetchall()
        print(c._sock.version(), "rows", len(rows))
        c.close()
    elif mode == "serial":
        c = connect(port, ca)
        print("serial", serial(c))
        c.close()
    elif mode == "hold":
        n = int(sys.argv[4])
        conns = [connect(port, ca) for _ in range(n)]
        print("ready", n, "serial", serial(conns[0]), flush=True)
        sys.stdin.readline()
        alive = 0
        for i, c in enumerate(conns):
            with c.cursor() as cur:
                cur.execute("SELECT %s", (i,))
                if cur.fetchone()[0] == i:
                    alive += 1
            c.close()
        print("alive", alive, "of", n, flush=True)
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
