//! A throwaway PostgreSQL server for the store tests: `initdb` into a temp dir, started on a free
//! loopback port, stopped (and its files removed) on drop. As root, initdb refuses to run, so
//! the server runs as the `postgres` user (else `nobody`).
//!
//! Without server binaries the tests that need one are skipped with a loud message, unless
//! `LLMBENCH_REQUIRE_POSTGRES=1` (set by `.ci/run`), where a missing server fails them.

use std::path::PathBuf;
use std::process::Command;

use super::common::TempDir;

pub struct PgServer {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    user: Option<&'static str>,
    _dir: TempDir,
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`.
fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = rd.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        dirs.extend(versions.into_iter().rev());
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl PgServer {
    /// A running server, or `None` (after a loud message) when none can be started here.
    pub fn start() -> Option<Self> {
        Self::start_with(None)
    }

    /// A server that takes TLS connections only (`hostssl` in pg_hba.conf), its certificate
    /// self-signed for the name `db.example` (not 127.0.0.1) by the `openssl` command; the
    /// certificate's PEM file is `server.crt` in [`PgServer::dir`].
    pub fn start_tls() -> Option<Self> {
        Self::start_with(Some("db.example"))
    }

    /// The server's own directory (its certificate, when it has one).
    pub fn dir(&self) -> &std::path::Path {
        &self._dir.0
    }

    fn start_with(tls_name: Option<&str>) -> Option<Self> {
        let Some(bin) = bin_dir() else {
            if std::env::var("LLMBENCH_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("LLMBENCH_REQUIRE_POSTGRES=1 but no PostgreSQL server binaries were found");
            }
            eprintln!(
                "\n*** SKIPPED: no PostgreSQL server binaries (initdb, pg_ctl) in \
                 /usr/lib/postgresql/*/bin or PATH: the PostgreSQL store tests did not run ***\n"
            );
            return None;
        };
        let dir = TempDir::new("pg");
        if let Some(name) = tls_name {
            let out = Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                ])
                .args(["-subj", &format!("/CN={name}")])
                .args(["-addext", &format!("subjectAltName=DNS:{name}")])
                .arg("-keyout")
                .arg(dir.path("server.key"))
                .arg("-out")
                .arg(dir.path("server.crt"))
                .output()
                .expect("the openssl command (installed by .ci/run)");
            assert!(out.status.success(), "openssl req: {out:?}");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                dir.path("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
        }
        let user = (unsafe { libc::geteuid() } == 0).then(|| {
            let has_postgres = Command::new("id")
                .arg("postgres")
                .output()
                .is_ok_and(|o| o.status.success());
            if has_postgres { "postgres" } else { "nobody" }
        });
        if let Some(u) = user {
            let ok = Command::new("chown")
                .args(["-R", u])
                .arg(&dir.0)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown {} to {u}", dir.0.display());
        }
        let data = dir.path("data");
        let port = free_port();
        let s = Self {
            port,
            bin,
            data,
            user,
            _dir: dir,
        };
        let out = s
            .cmd("initdb")
            .arg("-D")
            .arg(&s.data)
            .args(["-U", "llmbench", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {out:?}");
        let mut opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
            s._dir.0.display()
        );
        if tls_name.is_some() {
            // TLS only over TCP: a plain connection is refused by pg_hba.conf.
            std::fs::write(
                s.data.join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
            )
            .unwrap();
            opts += &format!(
                " -c ssl=on -c ssl_cert_file={0}/server.crt -c ssl_key_file={0}/server.key",
                s._dir.0.display()
            );
        }
        let out = s
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&s.data)
            .args(["-o", &opts, "-l"])
            .arg(s._dir.path("log"))
            .args(["-w", "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {out:?}\n{}",
            std::fs::read_to_string(s._dir.path("log")).unwrap_or_default()
        );
        Some(s)
    }

    fn cmd(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        match self.user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    /// The URL of database `db` (created with `create_db`, or the built-in `postgres`), with a
    /// password the server ignores (trust), so tests can check it is never printed.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://llmbench:hunter2secret@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// Creates an empty database.
    pub fn create_db(&self, db: &str) -> String {
        let mut c = postgres::Client::connect(&self.url("postgres"), postgres::NoTls).unwrap();
        c.batch_execute(&format!("CREATE DATABASE {db}")).unwrap();
        self.url(db)
    }

    /// A plain client of database `db`, for checks made beside llmbench.
    pub fn client(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(db), postgres::NoTls).unwrap()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}
