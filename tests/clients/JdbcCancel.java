import java.sql.*;
import java.util.concurrent.*;

/** Statement.cancel() through Sluice: the driver sends KILL QUERY with the handshake's
 *  connection id on a second connection. The cancelled statement ends with 1317 quickly;
 *  another session's statement running meanwhile is not interrupted. */
public class JdbcCancel {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:mariadb://127.0.0.1:" + args[0] + "/sluice_test?user=app&password=app_pw";
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try (Connection victim = DriverManager.getConnection(url); Connection bystander = DriverManager.getConnection(url)) {
            Future<Long> other = pool.submit(() -> {
                try (Statement s = bystander.createStatement(); ResultSet r = s.executeQuery("SELECT SLEEP(2)")) {
                    r.next();
                    return r.getLong(1);
                }
            });
            Statement s = victim.createStatement();
            Future<Integer> cancelled = pool.submit(() -> {
                try { s.executeQuery("SELECT SLEEP(10)"); return 0; }
                catch (SQLException e) { return e.getErrorCode(); }
            });
            Thread.sleep(500);
            long t0 = System.nanoTime();
            s.cancel();
            int code = cancelled.get(5, TimeUnit.SECONDS);
            long ms = (System.nanoTime() - t0) / 1_000_000;
            // A driver may report the interruption as 1317 or keep the statement's result (SLEEP returns 1).
            if (code != 1317) throw new AssertionError("cancelled statement ended with code " + code);
            if (ms > 500) throw new AssertionError("cancel took " + ms + " ms");
            long o = other.get(10, TimeUnit.SECONDS);
            if (o != 0) throw new AssertionError("the other session's SLEEP was interrupted: " + o);
            try (Statement again = victim.createStatement(); ResultSet r = again.executeQuery("SELECT 1")) {
                r.next();
                if (r.getInt(1) != 1) throw new AssertionError("victim unusable");
            }
            System.out.println("cancel took " + ms + " ms");
        } finally {
            pool.shutdownNow();
        }
        System.out.println("ALL OK");
    }
}
