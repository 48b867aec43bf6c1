import java.sql.*;

public class JdbcCheck {
    public static void main(String[] args) throws Exception {
        String port = args[0];
        String extra = args.length > 1 ? args[1] : "";
        String url = "jdbc:mariadb://127.0.0.1:" + port + "/sluice_test?user=app&password=app_pw" + extra;
        try (Connection c = DriverManager.getConnection(url)) {
            Statement s = c.createStatement();
            s.execute("DROP TABLE IF EXISTS jdbc_t");
            s.execute("CREATE TABLE jdbc_t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20), d DATETIME, n DECIMAL(10,2), b BLOB)");
            PreparedStatement p = c.prepareStatement("INSERT INTO jdbc_t (v, d, n, b) VALUES (?, ?, ?, ?)", Statement.RETURN_GENERATED_KEYS);
            p.setString(1, "héllo"); p.setTimestamp(2, Timestamp.valueOf("2024-01-02 03:04:05"));
            p.setBigDecimal(3, new java.math.BigDecimal("12.50")); p.setBytes(4, new byte[]{1, 2, 3});
            if (p.executeUpdate() != 1) throw new AssertionError("insert count");
            ResultSet k = p.getGeneratedKeys(); k.next(); long id = k.getLong(1);
            PreparedStatement q = c.prepareStatement("SELECT v, d, n, b FROM jdbc_t WHERE id = ?");
            q.setLong(1, id);
            ResultSet r = q.executeQuery();
            if (!r.next()) throw new AssertionError("no row");
            if (!r.getString(1).equals("héllo")) throw new AssertionError("v " + r.getString(1));
            if (!r.getTimestamp(2).equals(Timestamp.valueOf("2024-01-02 03:04:05"))) throw new AssertionError("d");
            if (r.getBigDecimal(3).compareTo(new java.math.BigDecimal("12.50")) != 0) throw new AssertionError("n");
            if (r.getBytes(4).length != 3) throw new AssertionError("b");
            c.setAutoCommit(false);
            s.executeUpdate("INSERT INTO jdbc_t (v) VALUES ('rolled back')");
            c.rollback();
            c.setAutoCommit(true);
            ResultSet n = s.executeQuery("SELECT COUNT(*) FROM jdbc_t");
            n.next();
            if (n.getInt(1) != 1) throw new AssertionError("rollback: " + n.getInt(1));
            PreparedStatement batch = c.prepareStatement("INSERT INTO jdbc_t (v) VALUES (?)");
            for (int i = 0; i < 50; i++) { batch.setString(1, "b" + i); batch.addBatch(); }
            int[] counts = batch.executeBatch();
            if (counts.length != 50) throw new AssertionError("batch");
            try { s.executeQuery("SELECT * FROM nope_jdbc"); throw new AssertionError("expected error"); }
            catch (SQLException e) { if (e.getErrorCode() != 1146) throw new AssertionError("code " + e.getErrorCode()); }
            ResultSet u = s.executeQuery("SELECT COUNT(*) FROM jdbc_t WHERE v LIKE 'b%'");
            u.next();
            if (u.getInt(1) != 50) throw new AssertionError("batch rows " + u.getInt(1));
            s.execute("DROP TABLE jdbc_t");
        }
        System.out.println("ALL OK");
    }
}
