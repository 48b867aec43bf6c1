"""mysql-connector-python (pure Python) over TLS through Sluice, verifying the CA.

    connector_tls.py PORT CA
"""
import sys

import mysql.connector


def main():
    port, ca = int(sys.argv[1]), sys.argv[2]
    c = mysql.connector.connect(host="127.0.0.1", port=port, user="app", password="app_pw",
                                database="sluice_test", ssl_ca=ca, ssl_verify_cert=True, use_pure=True)
    cur = c.cursor()
    cur.execute("SELECT 40 + 2")
    (v,) = cur.fetchone()
    version = c._socket.sock.version() if hasattr(c._socket.sock, "version") else "plain"
    print("value", v, version)
    c.close()


if __name__ == "__main__":
    main()
