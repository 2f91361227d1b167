//! A throwaway PostgreSQL cluster for tests: `initdb` and `pg_ctl` on a temporary directory
//! and a free loopback port, stopped and deleted on drop. Real PostgreSQL, no mocks: it needs
//! the server binaries (Debian's `postgresql` package), and says so when they are missing.
//! Run as root (as CI is), the server runs as the `postgres` user, which refuses root.
#![allow(clippy::missing_panics_doc)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running cluster; `url(db)` names a database in it.
#[derive(Debug)]
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    /// Server options for TLS, when it offers it.
    tls: Option<String>,
}

fn find_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("VANTAGE_PG_BIN") {
        return PathBuf::from(dir);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists());
    if let Some(dir) = on_path {
        return dir;
    }
    // Debian keeps the server's programs off PATH, one directory per major version.
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "PostgreSQL's server programs (initdb, pg_ctl) were not found on PATH or under \
             /usr/lib/postgresql: install Debian's `postgresql` package (.ci/run does), or set \
             VANTAGE_PG_BIN to their directory"
        )
    })
}

fn is_root() -> bool {
    std::env::var("USER").is_ok_and(|u| u == "root")
        || Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

impl Cluster {
    /// Initializes and starts a cluster (a few seconds).
    pub fn start() -> Cluster {
        Self::start_with_tls(None)
    }

    /// A cluster that offers TLS with this certificate chain and key (PEM), besides plain
    /// connections.
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Cluster {
        Self::start_with_tls(Some((cert_pem, key_pem)))
    }

    fn start_with_tls(tls: Option<(&str, &str)>) -> Cluster {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let as_postgres = is_root();
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(
                status.success(),
                "running as root, the test cluster must belong to the `postgres` user (Debian's \
                 postgresql package creates it)"
            );
        }
        let port = free_port();
        let tls = tls.map(|(cert, key)| {
            let (cert_file, key_file) =
                (dir.path().join("server.crt"), dir.path().join("server.key"));
            std::fs::write(&cert_file, cert).expect("writing the server certificate");
            std::fs::write(&key_file, key).expect("writing the server key");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))
                    .expect("the key private");
            }
            if as_postgres {
                let _ = Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(&cert_file)
                    .arg(&key_file)
                    .status();
            }
            format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                cert_file.display(),
                key_file.display()
            )
        });
        let mut cluster = Cluster {
            bin: find_bin(),
            dir,
            port,
            as_postgres,
            tls,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap_or_default(),
                "-U",
                "vantage",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        // The port was free when picked, but another process (a test running beside this one)
        // may take it before the server binds it: then the server exits at once. Another port
        // is tried, with what the server said on the test's output.
        for _ in 1..Self::START_ATTEMPTS {
            match cluster.try_start_server() {
                Ok(()) => return cluster,
                Err(e) => {
                    eprintln!(
                        "test cluster did not start, trying another port: {e}\nserver log:\n{}",
                        cluster.server_log()
                    );
                    cluster.port = free_port();
                }
            }
        }
        cluster.start_server();
        cluster
    }

    const START_ATTEMPTS: usize = 5;

    fn server_log(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, program: &str, args: &[&str]) {
        if let Err(e) = self.try_run(program, args) {
            panic!("{e}");
        }
    }

    fn try_run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let path = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let out = cmd
            .args(args)
            .output()
            .map_err(|e| format!("running {}: {e}", path.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Starts the server again (after [`Cluster::stop`]), on the same port and data.
    pub fn start_server(&self) {
        if let Err(e) = self.try_start_server() {
            panic!("{e}\nserver log:\n{}", self.server_log());
        }
    }

    fn try_start_server(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200{}",
            self.port,
            self.dir.path().display(),
            self.tls.as_deref().unwrap_or_default()
        );
        let log = self.dir.path().join("server.log");
        self.try_run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap_or_default(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap_or_default(),
                "-w",
                "start",
            ],
        )
    }

    /// Stops the server at once (as a crash would: no checkpoint); the data stays.
    pub fn stop(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap_or_default(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    /// A new, empty database in the cluster; its URL.
    pub fn database(&self, name: &str) -> String {
        create_database(&self.url("postgres"), name)
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://vantage@127.0.0.1:{}/{database}", self.port)
    }

    /// Where the server logs (for a test that failed).
    pub fn log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let path = self.bin.join("pg_ctl");
        let data = self.data();
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let _ = cmd
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// A new, empty database `name` on the server `url` (any database of it) reaches, as user
/// `vantage` without a password (a test cluster's); its URL.
pub fn create_database(url: &str, name: &str) -> String {
    let (server, _) = url
        .rsplit_once('/')
        .expect("a postgres:// URL with a database");
    let admin = format!("{server}/postgres");
    // The client runs a runtime of its own: never on a thread inside an async test's.
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut admin = postgres::Client::connect(&admin, postgres::NoTls)
                .expect("connecting to the test cluster");
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .expect("creating a database");
        })
        .join()
        .expect("creating a database");
    });
    format!("{server}/{name}")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
