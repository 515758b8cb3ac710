//! The bench a certification runs on: a work folder, the fixture served by a real peer, and
//! a hoard config folder whose host `client` reaches that peer through the plugin under test
//! (and whose host `denied` is granted nothing).
//!
//! The peer serves a folder `served/` holding the fixture as `tree/` and, later, the restore
//! targets as siblings. A share names a folder of it the way the peer's protocol does: an
//! absolute path over ssh, `/data/tree` (module, then path) for rsyncd, `/share/tree` for
//! SMB, `/export/tree` for NFS. A plugin that connects learns the peer's port from the plugin
//! setting `port` (and `mount_port` for NFS).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::RunError;
use super::manifest::Manifest;
use crate::fixture::{FixtureOptions, Holds, build_tree_with};
use crate::peers::{NfsPeer, RsyncdPeer, SmbPeer, SshdPeer};

/// The user and password the kit's connecting peers accept.
const PEER_USER: &str = "hoardkit";
const PEER_PASSWORD: &str = "kit-Pass-1";

/// Which real server the plugin is certified against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerKind {
    /// OpenSSH's sshd: the plugin runs programs on the client through `exec`.
    Ssh,
    /// An rsync daemon: the plugin connects to it.
    Rsyncd,
    /// Samba's smbd.
    Smb,
    /// nfs-ganesha (NFSv3 and v4).
    Nfs,
}

impl PeerKind {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            PeerKind::Ssh => "ssh",
            PeerKind::Rsyncd => "rsyncd",
            PeerKind::Smb => "smb",
            PeerKind::Nfs => "nfs",
        }
    }

    /// Why the plugin cannot use this peer at all, if it cannot.
    pub fn unusable_by(self, manifest: &Manifest) -> Option<String> {
        match self {
            PeerKind::Ssh if manifest.exec_programs().is_empty() => Some(format!(
                "{} declares no exec capability: it cannot use the ssh peer",
                manifest.name
            )),
            PeerKind::Rsyncd | PeerKind::Smb | PeerKind::Nfs if !manifest.connects() => {
                Some(format!(
                    "{} declares no connect capability: it cannot use the {} peer",
                    manifest.name,
                    self.name()
                ))
            }
            _ => None,
        }
    }
}

impl std::str::FromStr for PeerKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "ssh" => Ok(PeerKind::Ssh),
            "rsyncd" => Ok(PeerKind::Rsyncd),
            "smb" => Ok(PeerKind::Smb),
            "nfs" => Ok(PeerKind::Nfs),
            other => Err(format!("unknown peer `{other}` (ssh, rsyncd, smb, nfs)")),
        }
    }
}

/// A running peer (stopped when dropped).
#[allow(dead_code)] // held for its Drop
enum RunningPeer {
    Ssh(SshdPeer),
    Rsyncd(RsyncdPeer),
    Smb(SmbPeer),
    Nfs(NfsPeer),
}

/// The work folder, the peer and the config.
pub(crate) struct Bench {
    /// The folder everything lives in.
    pub work: PathBuf,
    /// What the fixture could make here.
    pub holds: Holds,
    /// The config folder.
    pub config: PathBuf,
    kind: PeerKind,
    _peer: RunningPeer,
}

impl Bench {
    /// Builds the fixture, starts the peer and writes the config.
    pub fn start(
        work: &Path,
        kind: PeerKind,
        manifest: &Manifest,
        fixture: FixtureOptions,
        cache_dir: &Path,
    ) -> Result<Bench, RunError> {
        let served = work.join("served");
        let holds = build_tree_with(&served.join("tree"), fixture)
            .map_err(RunError::io("build the fixture tree"))?;
        let secret_file = work.join("peer-password");
        std::fs::write(&secret_file, PEER_PASSWORD).map_err(RunError::io("write the secret"))?;
        let (peer, access, granted) = match kind {
            PeerKind::Ssh => {
                let peer = SshdPeer::start()?;
                let ssh = format!(
                    "ssh: (user: {:?}, port: {}, key: {:?}, known_hosts: {:?})",
                    peer.user(),
                    peer.port(),
                    path_text(&peer.client_key()),
                    path_text(&peer.known_hosts()),
                );
                let grants = grants(manifest, &[], &secret_file, None);
                (RunningPeer::Ssh(peer), format!("{ssh}, "), grants)
            }
            PeerKind::Rsyncd => {
                let peer = RsyncdPeer::start(&served, PEER_USER, PEER_PASSWORD)?;
                let settings = grants(manifest, &[peer.port()], &secret_file, None);
                (RunningPeer::Rsyncd(peer), String::new(), settings)
            }
            PeerKind::Smb => {
                let peer = SmbPeer::start(&served, PEER_USER, PEER_PASSWORD)?;
                let settings = grants(manifest, &[peer.port()], &secret_file, Some("WORKGROUP"));
                (RunningPeer::Smb(peer), String::new(), settings)
            }
            PeerKind::Nfs => {
                let peer = NfsPeer::start(&served)?;
                let settings = grants(
                    manifest,
                    &[peer.nfs_port(), peer.mount_port()],
                    &secret_file,
                    None,
                );
                (RunningPeer::Nfs(peer), String::new(), settings)
            }
        };
        let config = work.join("config");
        let hosts = config.join("hosts");
        std::fs::create_dir_all(&hosts).map_err(RunError::io("make the config folder"))?;
        let write = |path: PathBuf, text: String| {
            std::fs::write(&path, text).map_err(RunError::io(format!("write {}", path.display())))
        };
        write(
            config.join("hoard.ron"),
            format!(
                "(pool: {:?}, cache_dir: {:?}, client_paths: {{ {} }}, defaults: (transport: {:?}))\n",
                path_text(&work.join("pool")),
                path_text(cache_dir),
                client_paths(manifest),
                manifest.name
            ),
        )?;
        let bench = Bench {
            work: work.to_path_buf(),
            holds,
            config,
            kind,
            _peer: peer,
        };
        let share = bench.share("tree");
        write(
            hosts.join("client.ron"),
            format!("(address: \"127.0.0.1\", {access}{granted}, shares: [{share:?}])\n"),
        )?;
        // The same access, nothing granted.
        write(
            hosts.join("denied.ron"),
            format!(
                "(address: \"127.0.0.1\", {access}grants: (exec: [], connect: []), shares: [{share:?}])\n"
            ),
        )?;
        Ok(bench)
    }

    /// The local path of a folder of `served/`.
    pub fn local(&self, name: &str) -> PathBuf {
        self.work.join("served").join(name)
    }

    /// A folder of `served/` as the plugin names it on the peer.
    pub fn share(&self, name: &str) -> String {
        match self.kind {
            PeerKind::Ssh => path_text(&self.local(name)),
            PeerKind::Rsyncd => format!("/{}/{name}", crate::peers::RSYNCD_MODULE),
            PeerKind::Smb => format!("/share/{name}"),
            PeerKind::Nfs => format!("/export/{name}"),
        }
    }
}

/// Where the programs the plugin runs are on the client (this machine), for `client_paths`.
fn client_paths(manifest: &Manifest) -> String {
    let mut out = String::new();
    for program in manifest.exec_programs() {
        let found = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
            .iter()
            .map(|dir| Path::new(dir).join(program))
            .find(|path| path.is_file());
        if let Some(path) = found {
            let _ = write!(out, "{program:?}: {:?}, ", path_text(&path));
        }
    }
    out
}

/// The config's grants for the plugin: every program, port and secret its manifest asks for
/// (a plugin from a folder gets nothing it is not granted), and the peer's ports as plugin
/// settings.
fn grants(manifest: &Manifest, ports: &[u16], secret_file: &Path, domain: Option<&str>) -> String {
    let programs: Vec<String> = manifest
        .exec_programs()
        .iter()
        .map(|p| format!("{p:?}"))
        .collect();
    let mut secrets = String::new();
    for name in manifest.secrets() {
        let _ = write!(
            secrets,
            "{name:?}: (user: {PEER_USER:?}, password_file: {:?}, domain: {domain:?}), ",
            path_text(secret_file)
        );
    }
    let ports_list: Vec<String> = ports.iter().map(u16::to_string).collect();
    let mut settings = String::new();
    for (name, port) in ["port", "mount_port"].iter().zip(ports) {
        let _ = write!(settings, "{name:?}: \"{port}\", ");
    }
    format!(
        "grants: (exec: [{}], connect: [{}], secrets: {{ {secrets} }}), plugin_settings: {{ {settings} }}",
        programs.join(", "),
        ports_list.join(", ")
    )
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}
