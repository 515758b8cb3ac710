//! An NFS server for NFS transport tests: nfs-ganesha (Debian's `nfs-ganesha` with
//! `nfs-ganesha-vfs`) exporting a directory the test fills as `/export`, over NFSv3 and
//! NFSv4, on free loopback ports.
//!
//! The setup follows the recipe proven in `peers.md` (section 4a). ganesha refuses to start
//! NFSv3 unless it can register with rpcbind, and rpcbind cannot be limited to loopback, so
//! rpcbind runs inside a private network namespace that has only `lo` (nothing listens on port
//! 111 of the host), while ganesha stays in the host namespace, bound to 127.0.0.1, and
//! registers through the unix socket `/run/rpcbind.sock`, which every namespace shares.
//! Clients never ask a portmapper: they are given the NFS and MOUNT ports ([`NfsPeer::url`]).
//!
//! Because that socket is machine-wide, only one peer may exist at a time, across processes:
//! [`NfsPeer::start`] waits for an exclusive lock on `/tmp/hoard-nfs-peer.lock` and holds it
//! until the peer is dropped. The peer owns a temporary directory (config, logs, recovery
//! directory, pid file), the network namespace `hoard-nfs-peer`, the rpcbind in it and the
//! socket; all of them are removed on drop. ganesha needs root.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::smb::is_live;
use super::{PeerError, PeerProcess, free_port, require_binary, run};

const GANESHA: &str = "/usr/bin/ganesha.nfsd";
const RPCBIND: &str = "/usr/sbin/rpcbind";
const IP: &str = "/usr/sbin/ip";

/// The lock file that lets only one NFS peer exist at a time on the machine.
const LOCK_FILE: &str = "/tmp/hoard-nfs-peer.lock";

/// The network namespace rpcbind runs in.
const NETNS: &str = "hoard-nfs-peer";

/// The export's path in the NFS namespace (NFSv4 pseudo path, also what NFSv3 mounts).
const EXPORT: &str = "/export";

/// rpcbind's unix socket, through which ganesha registers; the same in every namespace.
const RPCBIND_SOCKET: &str = "/run/rpcbind.sock";

/// rpcbind's lock file, left behind when it exits.
const RPCBIND_LOCK: &str = "/run/rpcbind.lock";

/// How long rpcbind may take to create its socket.
const RPCBIND_TIMEOUT: Duration = Duration::from_secs(10);

/// A running nfs-ganesha serving `/export` over NFSv3 and NFSv4 on `127.0.0.1`; stopped,
/// with its rpcbind and network namespace, when dropped.
#[derive(Debug)]
pub struct NfsPeer {
    // Options so that drop can stop ganesha before rpcbind; both before the lock is released
    // (fields drop after `Drop::drop`).
    ganesha: Option<PeerProcess>,
    rpcbind: Option<PeerProcess>,
    /// Whether the network namespace was created by this peer.
    netns: bool,
    /// Whether `/run/rpcbind.sock` belongs to this peer's rpcbind (false when an rpcbind
    /// that was already running is used).
    own_socket: bool,
    dir: tempfile::TempDir,
    nfs_port: u16,
    mount_port: u16,
    _lock: fs::File,
}

impl NfsPeer {
    /// Waits until no other NFS peer exists on the machine, starts rpcbind in the network
    /// namespace `hoard-nfs-peer` and ganesha exporting `export_dir` as `/export` (read and
    /// write, no root squash, AUTH_SYS, TCP only, no grace period) on free loopback ports, and
    /// waits until the NFS and MOUNT ports accept connections.
    pub fn start(export_dir: &Path) -> Result<NfsPeer, PeerError> {
        require_binary(GANESHA, "nfs-ganesha")?;
        require_fsal_vfs()?;
        require_binary(RPCBIND, "rpcbind")?;
        require_binary(IP, "iproute2")?;
        let export_dir = fs::canonicalize(export_dir).map_err(PeerError::io(format!(
            "resolve the export directory {}",
            export_dir.display()
        )))?;
        let lock = lock_exclusive(Path::new(LOCK_FILE))?;
        let dir = tempfile::Builder::new()
            .prefix("hoard-nfs-")
            .tempdir()
            .map_err(PeerError::io("create the nfs peer's directory"))?;
        fs::create_dir(dir.path().join("recovery")).map_err(PeerError::io("create recovery/"))?;
        let nfs_port = free_port()?;
        let mut mount_port = free_port()?;
        while mount_port == nfs_port {
            mount_port = free_port()?;
        }
        // From here on, drop cleans up whatever has been started.
        let mut peer = NfsPeer {
            ganesha: None,
            rpcbind: None,
            netns: false,
            own_socket: false,
            dir,
            nfs_port,
            mount_port,
            _lock: lock,
        };
        peer.start_rpcbind()?;
        peer.start_ganesha(&export_dir)?;
        Ok(peer)
    }

    /// Starts rpcbind in a fresh network namespace, unless an rpcbind already answers on the
    /// socket.
    fn start_rpcbind(&mut self) -> Result<(), PeerError> {
        // We hold the lock: a namespace of that name is left over from a peer whose process
        // died, and so is whatever runs in it.
        remove_stale_netns()?;
        if Path::new(RPCBIND_SOCKET).exists() {
            if UnixStream::connect(RPCBIND_SOCKET).is_ok() {
                // A live rpcbind outside our namespace: ganesha can register with it.
                return Ok(());
            }
            // A stale socket would make ganesha's registration fail.
            remove_if_present(Path::new(RPCBIND_SOCKET))?;
            remove_if_present(Path::new(RPCBIND_LOCK))?;
        }
        run(Command::new(IP).args(["netns", "add", NETNS]))?;
        self.netns = true;
        run(Command::new(IP).args(["-n", NETNS, "link", "set", "lo", "up"]))?;
        let log_path = self.dir.path().join("rpcbind.log");
        let log = fs::File::create(&log_path).map_err(PeerError::io("create rpcbind.log"))?;
        let log_err = log
            .try_clone()
            .map_err(PeerError::io("duplicate rpcbind.log"))?;
        // `ip netns exec` execs rpcbind, so the child's PID is rpcbind's.
        let child = Command::new(IP)
            .args(["netns", "exec", NETNS, RPCBIND, "-f"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(PeerError::io("spawn rpcbind"))?;
        let process = PeerProcess::new(child, "rpcbind", log_path);
        let pid = process.pid();
        self.rpcbind = Some(process);
        self.own_socket = true;
        let started = Instant::now();
        while UnixStream::connect(RPCBIND_SOCKET).is_err() {
            let exited = libc::pid_t::try_from(pid).map_or(true, |pid| !is_live(pid));
            if exited || started.elapsed() > RPCBIND_TIMEOUT {
                let tail = self
                    .rpcbind
                    .as_ref()
                    .map(PeerProcess::log_tail)
                    .unwrap_or_default();
                return Err(PeerError::Command {
                    command: format!("ip netns exec {NETNS} {RPCBIND} -f"),
                    detail: format!(
                        "{} without answering on {RPCBIND_SOCKET}:\n{tail}",
                        if exited {
                            "exited".to_owned()
                        } else {
                            format!("waited {RPCBIND_TIMEOUT:?}")
                        }
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Writes ganesha.conf and starts ganesha in the foreground.
    fn start_ganesha(&mut self, export_dir: &Path) -> Result<(), PeerError> {
        let root = self.dir.path();
        let config = root.join("ganesha.conf");
        fs::write(
            &config,
            ganesha_conf(root, export_dir, self.nfs_port, self.mount_port),
        )
        .map_err(PeerError::io("write ganesha.conf"))?;
        let log_path = self.log();
        // ganesha's own log (-L) and anything it prints before opening it go to one file.
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(PeerError::io("create ganesha.log"))?;
        let log_err = log
            .try_clone()
            .map_err(PeerError::io("duplicate ganesha.log"))?;
        let child = Command::new(GANESHA)
            .arg("-F")
            .arg("-f")
            .arg(&config)
            .arg("-L")
            .arg(&log_path)
            // Required: the default pid file's directory does not exist.
            .arg("-p")
            .arg(root.join("ganesha.pid"))
            .args(["-N", "NIV_EVENT"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(PeerError::io("spawn ganesha.nfsd"))?;
        let ganesha = self
            .ganesha
            .insert(PeerProcess::new(child, "ganesha.nfsd", log_path));
        ganesha.wait_for_port(self.nfs_port)?;
        ganesha.wait_for_port(self.mount_port)?;
        Ok(())
    }

    /// The NFS port (NFSv3 and NFSv4) on 127.0.0.1.
    pub fn nfs_port(&self) -> u16 {
        self.nfs_port
    }

    /// The MOUNT port (NFSv3 only) on 127.0.0.1.
    pub fn mount_port(&self) -> u16 {
        self.mount_port
    }

    /// The export's path, `/export`.
    pub fn export(&self) -> &'static str {
        EXPORT
    }

    /// A libnfs URL for NFSv3 of `path` below the export (empty for the export itself, else
    /// starting with `/`), with both ports given so that no portmapper is asked:
    /// `nfs://127.0.0.1/export{path}?version=3&nfsport=P&mountport=M`.
    pub fn url(&self, path: &str) -> String {
        format!(
            "nfs://127.0.0.1{EXPORT}{path}?version=3&nfsport={}&mountport={}",
            self.nfs_port, self.mount_port
        )
    }

    /// Like [`NfsPeer::url`], for NFSv4: `nfs://127.0.0.1/export{path}?version=4&nfsport=P`.
    pub fn url_v4(&self, path: &str) -> String {
        format!(
            "nfs://127.0.0.1{EXPORT}{path}?version=4&nfsport={}",
            self.nfs_port
        )
    }

    /// ganesha's log (its own log file, standard output and error).
    pub fn log(&self) -> PathBuf {
        self.dir.path().join("ganesha.log")
    }

    /// The process id of ganesha.
    pub fn pid(&self) -> u32 {
        self.ganesha.as_ref().map_or(0, PeerProcess::pid)
    }
}

impl Drop for NfsPeer {
    fn drop(&mut self) {
        // ganesha first: it unregisters from rpcbind on the way out.
        drop(self.ganesha.take());
        drop(self.rpcbind.take());
        if self.own_socket {
            // rpcbind leaves both behind, and a stale socket breaks the next registration.
            let _ = fs::remove_file(RPCBIND_SOCKET);
            let _ = fs::remove_file(RPCBIND_LOCK);
        }
        if self.netns {
            let _ = Command::new(IP)
                .args(["netns", "del", NETNS])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// ganesha.conf: NFSv3 and NFSv4 over TCP on `127.0.0.1`, no NLM, RQUOTA or grace period,
/// numeric owners only (no idmapd), `export_dir` exported as `/export` through FSAL VFS.
fn ganesha_conf(root: &Path, export_dir: &Path, nfs_port: u16, mount_port: u16) -> String {
    format!(
        "NFS_CORE_PARAM {{
    Bind_addr = 127.0.0.1;
    NFS_Port = {nfs_port};
    MNT_Port = {mount_port};
    Protocols = 3, 4;
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Enable_UDP = false;
    Mount_Path_Pseudo = true;
}}
NFSV4 {{
    Graceless = true;
    RecoveryBackend = fs;
    RecoveryRoot = {recovery};
    Allow_Numeric_Owners = true;
    Only_Numeric_Owners = true;
}}
EXPORT {{
    Export_Id = 1;
    Path = {export};
    Pseudo = {EXPORT};
    Access_Type = RW;
    Squash = No_Root_Squash;
    SecType = sys;
    Protocols = 3, 4;
    Transports = TCP;
    FSAL {{ Name = VFS; }}
}}
LOG {{ Default_Log_Level = EVENT; }}
",
        recovery = root.join("recovery").display(),
        export = export_dir.display(),
    )
}

/// Fails with [`PeerError::MissingBinary`] unless ganesha's FSAL VFS module is installed
/// (`/usr/lib/<multiarch>/ganesha/libfsalvfs.so`).
fn require_fsal_vfs() -> Result<(), PeerError> {
    let found = fs::read_dir("/usr/lib").is_ok_and(|entries| {
        entries
            .flatten()
            .any(|entry| entry.path().join("ganesha/libfsalvfs.so").is_file())
    });
    if found {
        Ok(())
    } else {
        Err(PeerError::MissingBinary {
            binary: "/usr/lib/<multiarch>/ganesha/libfsalvfs.so".into(),
            package: "nfs-ganesha-vfs".into(),
        })
    }
}

/// Opens (creating it if needed) `path` and waits for an exclusive `flock` on it; the lock
/// lasts as long as the returned file is open.
fn lock_exclusive(path: &Path) -> Result<fs::File, PeerError> {
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(PeerError::io(format!("open {}", path.display())))?;
    loop {
        // SAFETY: flock(2) on a file descriptor that `file` keeps open.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(file);
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(PeerError::Io {
                what: format!("lock {}", path.display()),
                source: error,
            });
        }
    }
}

/// Removes the network namespace if it exists, after stopping what still runs in it (an
/// rpcbind left by a peer whose process died without dropping it).
fn remove_stale_netns() -> Result<(), PeerError> {
    if !Path::new("/run/netns").join(NETNS).exists() {
        return Ok(());
    }
    let output = Command::new(IP)
        .args(["netns", "pids", NETNS])
        .output()
        .map_err(PeerError::io("run `ip netns pids`"))?;
    let pids: Vec<libc::pid_t> = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .filter(|&pid| pid > 1)
        .collect();
    for &pid in &pids {
        // SAFETY: kill(2) on a process that runs in our own namespace, left over.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && pids.iter().any(|&pid| is_live(pid)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for &pid in pids.iter().filter(|&&pid| is_live(pid)) {
        // SAFETY: as above; it ignored SIGTERM.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    run(Command::new(IP).args(["netns", "del", NETNS]))
}

/// Removes `path`; a missing file is fine.
fn remove_if_present(path: &Path) -> Result<(), PeerError> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(PeerError::Io {
            what: format!("remove {}", path.display()),
            source: error,
        }),
        _ => Ok(()),
    }
}
