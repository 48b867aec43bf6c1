// node mysql2 over TLS through Sluice, verifying the certificate against the test's CA.
//   node node_mysql2_tls.js PORT CA
const fs = require('fs');
const mysql = require('mysql2/promise');

(async () => {
  const [port, ca] = process.argv.slice(2);
  const c = await mysql.createConnection({
    host: '127.0.0.1', port: Number(port), user: 'app', password: 'app_pw', database: 'sluice_test',
    ssl: { ca: fs.readFileSync(ca), rejectUnauthorized: true },
  });
  const [rows] = await c.query('SELECT 1 + 1 AS two');
  const [prepared] = await c.execute('SELECT ? AS v', ['x']);
  const protocol = c.connection.stream.getProtocol ? c.connection.stream.getProtocol() : 'none';
  console.log(`rows ${rows[0].two} ${prepared[0].v} ${protocol}`);
  await c.end();
})().catch((e) => { console.error(e.message); process.exit(1); });
