//! What the suite breaks: testbed servers (signalled by their recorded PIDs through
//! `scripts/testbed`), and the Sluice binary run as a process of its own, so that it can be
//! sent SIGTERM like a deployed one.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `scripts/testbed ARGS...` (kill / restart one server); panics if it fails.
pub fn testbed(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/testbed");
    let st = Command::new(script).args(args).status().expect("scripts/testbed");
    assert!(st.success(), "scripts/testbed {args:?} failed");
}

/// A free loopback port (bound, then released for the process to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The `sluice` binary, running with a config file of its own; killed when dropped if it has
/// not ended.
pub struct SluiceProcess {
    child: Child,
    pub port: u16,
    pub admin: u16,
    pub config: PathBuf,
    pub log: PathBuf,
}

impl SluiceProcess {
    /// Writes `config` (with `{listen}` and `{admin}` filled in) and starts the binary; returns
    /// once a client can log in.
    pub async fn start(config: &str) -> SluiceProcess {
        Self::start_on(config, free_port(), free_port(), "a").await
    }

    /// [`SluiceProcess::start`] on given ports (a second instance beside a first, with
    /// `reuse_port`); `name` keeps the instances' files apart.
    pub async fn start_on(config: &str, port: u16, admin: u16, name: &str) -> SluiceProcess {
        let dir = std::env::temp_dir().join(format!("sluice-faults-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sluice.toml");
        let text =
            config.replace("{listen}", &format!("127.0.0.1:{port}")).replace("{admin}", &format!("127.0.0.1:{admin}"));
        std::fs::write(&path, text).unwrap();
        let log = dir.join("sluice.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["--config"])
            .arg(&path)
            .env("RUST_LOG", "sluice=info")
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("the sluice binary starts");
        let p = SluiceProcess { child, port, admin, config: path, log };
        let started = Instant::now();
        loop {
            if let Ok(c) = mysql_async::Conn::new(mysql_async::Opts::from_url(&p.url()).unwrap()).await {
                let _ = c.disconnect().await;
                return p;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "sluice did not start; see {}", p.log.display());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The process id (what its fleet registry row shows).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Removes the config and the log (kept when the suite fails, to look at).
    pub fn remove_files(&self) {
        if let Some(dir) = self.config.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// The URL clients use.
    pub fn url(&self) -> String {
        format!("mysql://app:app_pw@127.0.0.1:{}/sluice_test?prefer_socket=false", self.port)
    }

    /// SIGTERM, by the PID of the process this suite started.
    pub fn sigterm(&self) {
        let st = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(st.success());
    }

    /// SIGKILL (a crash: nothing of the drain runs), and waits for the process to end.
    pub fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `limit` for the process to end; its exit status if it did.
    pub async fn ended_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// The admin endpoint's `/status` document.
    pub async fn status(&self) -> serde_json::Value {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.admin)).await.unwrap();
        s.write_all(b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).await.unwrap();
        let body = buf.split_once("\r\n\r\n").map(|x| x.1).unwrap_or_default();
        serde_json::from_str(body).unwrap_or_else(|e| panic!("/status: {e}: {buf}"))
    }

    /// Waits until `/status` satisfies `want` (checked every 50 ms); how long it took.
    pub async fn until(&self, what: &str, limit: Duration, want: impl Fn(&serde_json::Value) -> bool) -> Duration {
        let started = Instant::now();
        loop {
            let s = self.status().await;
            if want(&s) {
                return started.elapsed();
            }
            assert!(started.elapsed() < limit, "{what}: not within {limit:?}: {s}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Which shard the ring puts each key on (`sluice shard-of`, the DBAs' command).
    pub fn shards_of(&self, keys: &[i64]) -> std::collections::HashMap<i64, String> {
        let mut map = std::collections::HashMap::new();
        for chunk in keys.chunks(2000) {
            let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
                .args(["shard-of", "--config"])
                .arg(&self.config)
                .args(chunk.iter().map(|k| k.to_string()))
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let (k, s) = line.split_once('\t').unwrap();
                map.insert(k.parse().unwrap(), s.to_string());
            }
        }
        map
    }
}

impl Drop for SluiceProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One backend's entry in a `/status` document.
pub fn backend<'a>(status: &'a serde_json::Value, addr: &str) -> Option<&'a serde_json::Value> {
    status["shards"]
        .as_array()?
        .iter()
        .flat_map(|s| s["backends"].as_array().into_iter().flatten())
        .find(|b| b["addr"] == addr)
}

/// The writer `/status` names for a shard.
pub fn writer<'a>(status: &'a serde_json::Value, shard: &str) -> Option<&'a str> {
    status["shards"].as_array()?.iter().find(|s| s["name"] == shard)?["writer"].as_str()
}
