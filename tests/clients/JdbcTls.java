import java.sql.*;

/** MariaDB Connector/J over TLS, verifying Sluice's certificate against a CA file. */
public class JdbcTls {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:mariadb://127.0.0.1:" + args[0] + "/sluice_test?user=app&password=app_pw"
                + "&useSsl=true&serverSslCert=" + args[1];
        try (Connection c = DriverManager.getConnection(url)) {
            PreparedStatement p = c.prepareStatement("SELECT ? + 1");
            p.setInt(1, 41);
            ResultSet r = p.executeQuery();
            r.next();
            if (r.getInt(1) != 42) throw new AssertionError("got " + r.getInt(1));
            Statement s = c.createStatement();
            ResultSet q = s.executeQuery("SELECT 'tls'");
            q.next();
            if (!q.getString(1).equals("tls")) throw new AssertionError("text");
        }
        System.out.println("ALL OK");
    }
}
