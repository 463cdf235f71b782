// PgJDBC (Debian's libpostgresql-jdbc-java) against `bagbase serve` (issue "PostgreSQL
// wire server", acceptance 1): SCRAM-SHA-256 over TLS, DatabaseMetaData table listing,
// a PreparedStatement with a typed parameter reading timestamp and bytea, a nested
// (struct) field, json columns. Run by tests/it/server.rs:
//   java -cp /usr/share/java/postgresql.jar JdbcClient.java HOST PORT USER PASSWORD
// Exits 1 on any failed check.
import java.sql.*;
import java.util.*;

public class JdbcClient {
    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    public static void main(String[] a) throws Exception {
        String url = "jdbc:postgresql://" + a[0] + ":" + a[1] + "/main?sslmode=require";
        Properties p = new Properties();
        p.setProperty("user", a[2]);
        p.setProperty("password", a[3]);
        try (Connection c = DriverManager.getConnection(url, p)) {
            Set<String> names = new HashSet<>();
            try (ResultSet rs = c.getMetaData().getTables(null, "public", "%", new String[] {"TABLE"})) {
                while (rs.next()) names.add(rs.getString("TABLE_NAME"));
            }
            for (String t : new String[] {"files", "topics", "messages", "/rosout"})
                check(names.contains(t), "table " + t + " listed: " + names);

            try (PreparedStatement s = c.prepareStatement(
                    "SELECT log_time, data, size_bytes FROM messages WHERE topic = ? ORDER BY log_time LIMIT 3")) {
                s.setString(1, "/rosout");
                try (ResultSet rs = s.executeQuery()) {
                    int n = 0;
                    while (rs.next()) {
                        Timestamp ts = rs.getTimestamp(1);
                        byte[] data = rs.getBytes(2);
                        long size = rs.getLong(3);
                        check(ts != null && ts.toInstant().getEpochSecond() > 1_262_304_000L, "timestamp " + ts);
                        check(data != null && data.length == size, "bytea length " + (data == null ? -1 : data.length) + " vs " + size);
                        n++;
                    }
                    check(n == 3, "3 rows, got " + n);
                }
            }
            try (Statement s = c.createStatement();
                 ResultSet rs = s.executeQuery(
                     "SELECT header.frame_id AS frame, level, msg FROM \"/rosout\" ORDER BY log_time LIMIT 1")) {
                check(rs.next(), "a /rosout row");
                check(rs.getString("msg") != null, "msg");
                rs.getInt("level");
            }
            try (PreparedStatement s = c.prepareStatement(
                    "SELECT params, metrics FROM experiments WHERE experiment_id = ?")) {
                s.setString(1, "e1");
                try (ResultSet rs = s.executeQuery()) {
                    check(rs.next(), "experiment e1");
                    String type = rs.getMetaData().getColumnTypeName(1);
                    check(type.equals("json"), "params is json, got " + type);
                    Object params = rs.getObject(1);
                    check(params.toString().contains("\"layers\""), "params " + params);
                }
            }
        }
        System.out.println("PgJDBC: ok");
    }
}
