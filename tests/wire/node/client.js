// node-postgres against `bagbase serve` (issue "PostgreSQL wire server", acceptance 1):
// SCRAM-SHA-256 over TLS, list tables, a parameterized query reading timestamp and
// bytea, a nested (struct) column, json columns. Run by tests/it/server.rs: node client.js HOST PORT
// USER PASSWORD; exits 1 on any failed check.
const { Client } = require("pg");
const assert = require("assert");

const [host, port, user, password] = process.argv.slice(2);

async function main() {
  const c = new Client({
    host, port: Number(port), user, password, database: "main",
    ssl: { rejectUnauthorized: false },
  });
  await c.connect();
  assert.ok(c.connection.stream.encrypted, "TLS in use");
  const tables = await c.query(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'");
  const names = new Set(tables.rows.map((r) => r.table_name));
  for (const t of ["files", "topics", "messages", "/rosout"]) assert.ok(names.has(t), t);

  // Extended protocol with a typed parameter.
  const r = await c.query(
    "SELECT log_time, data, size_bytes FROM messages WHERE topic = $1 ORDER BY log_time LIMIT 3",
    ["/rosout"]);
  assert.strictEqual(r.rows.length, 3);
  const row = r.rows[0];
  assert.ok(row.log_time instanceof Date, typeof row.log_time);
  assert.ok(row.log_time.getUTCFullYear() >= 2010, row.log_time);
  assert.ok(Buffer.isBuffer(row.data), typeof row.data);
  assert.strictEqual(row.data.length, Number(row.size_bytes));

  const n = await c.query(
    'SELECT header.frame_id AS frame, level, msg FROM "/rosout" ORDER BY log_time LIMIT 1');
  assert.strictEqual(typeof n.rows[0].msg, "string");
  assert.strictEqual(typeof n.rows[0].level, "number");

  // A struct column whole arrives as PostgreSQL's record text: (seq,"stamp",frame_id).
  const s = await c.query(
    'SELECT header, header.seq AS seq FROM "/rosout" ORDER BY log_time LIMIT 1');
  const header = s.rows[0].header;
  assert.strictEqual(typeof header, "string");
  assert.ok(header.startsWith("(" + s.rows[0].seq + ","), header);

  // json columns (OID 114) arrive parsed, over the simple and the extended protocol.
  const jsonSql = "SELECT params, metrics FROM experiments WHERE experiment_id = ";
  for (const j of [await c.query(jsonSql + "'e1'"), await c.query(jsonSql + "$1", ["e1"])]) {
    assert.strictEqual(j.fields[0].dataTypeID, 114);
    assert.deepStrictEqual(j.rows[0].params, { lr: 0.001, layers: [64, 64] });
    assert.deepStrictEqual(j.rows[0].metrics, { loss: 0.5 });
  }
  await c.end();
  console.log("node-postgres: ok");
}

main().catch((e) => { console.error(e); process.exit(1); });
