//! Starting an rsync session: the options this side asks the remote rsync for, the protocol
//! version exchange, the compatibility flags of protocol 30, the checksum negotiation and the
//! checksum seed (`setup_protocol` in rsync's `compat.c`).

use crate::checksum::Algorithm;
use crate::conn::Conn;
use crate::error::{Error, protocol};
use crate::flist::ListOptions;
use crate::wire::{NDX_DONE, NdxCodec, put_i32, put_vstring, read_i32, read_varint, read_vstring};

/// The newest protocol this plugin speaks (rsync 3.1 and later).
pub const NEWEST_PROTOCOL: i32 = 31;
/// The oldest (rsync 3.0's predecessor, 2.6.x).
pub const OLDEST_PROTOCOL: i32 = 29;

const CF_INC_RECURSE: i32 = 1 << 0;
const CF_SAFE_FLIST: i32 = 1 << 3;
const CF_CHKSUM_SEED_FIX: i32 = 1 << 5;
const CF_VARINT_FLIST_FLAGS: i32 = 1 << 7;

/// What the admin's settings ask of the session.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// The protocol to announce (29 to 31).
    pub protocol: i32,
    /// Checksums to offer, most preferred first.
    pub checksums: Vec<Algorithm>,
    /// Ask for extended attributes (`-X`).
    pub xattrs: bool,
    /// Stay on the share's file system (`-x`).
    pub one_file_system: bool,
}

impl Wanted {
    /// The option cluster for `rsync --server`: links, owners, groups, devices and specials,
    /// times, permissions, recursion, hard links (and xattrs, one file system), then after
    /// `e.` the capabilities of this side: symlink times, safe file lists, no xattr
    /// optimisation, the checksum-seed fix, varint flags with negotiated checksums.
    pub fn option_cluster(&self) -> Vec<u8> {
        let mut cluster = b"-logDtprH".to_vec();
        if self.xattrs && self.protocol >= 30 {
            cluster.push(b'X');
        }
        if self.one_file_system {
            cluster.push(b'x');
        }
        cluster.extend_from_slice(b"e.LfxCv");
        cluster
    }

    /// What the file list will carry.
    fn list_options(&self, protocol: i32, compat: i32) -> ListOptions {
        ListOptions {
            protocol,
            varint_flags: compat & CF_VARINT_FLIST_FLAGS != 0,
            safe_flist: compat & CF_SAFE_FLIST != 0 || protocol >= 31,
            owners: true,
            devices: true,
            links: true,
            hard_links: true,
            xattrs: self.xattrs && protocol >= 30,
            id_names: true,
        }
    }
}

/// A set-up session: the agreed protocol, checksum and seed, and the index codecs.
pub struct Session {
    /// The connection.
    pub conn: Conn,
    /// The protocol both sides speak.
    pub protocol: i32,
    /// The strong checksum of blocks and files.
    pub checksum: Algorithm,
    /// The seed mixed into checksums.
    pub seed: i32,
    /// What the file list carries.
    pub list: ListOptions,
    /// Indexes this side writes.
    pub ndx_out: NdxCodec,
    /// Indexes this side reads.
    pub ndx_in: NdxCodec,
}

impl Session {
    /// Sends the end of a phase or of the transfer (`NDX_DONE`) and flushes it.
    pub fn send_done(&mut self) -> Result<(), Error> {
        let mut out = Vec::new();
        self.ndx_out.write(&mut out, NDX_DONE);
        self.conn.send(&out);
        self.conn.flush()
    }

    /// Reads the peer's end of a phase or goodbye; any other index is a protocol error.
    pub fn expect_done(&mut self) -> Result<(), Error> {
        let ndx = self.ndx_in.read(&mut self.conn)?;
        if ndx != NDX_DONE {
            return Err(protocol(format!("goodbye expected, index {ndx} came")));
        }
        Ok(())
    }
}

/// Runs the setup as the client. `remote_protocol` is the version a daemon already announced
/// in its greeting; otherwise the versions are exchanged here.
pub fn setup(
    mut conn: Conn,
    wanted: &Wanted,
    remote_protocol: Option<i32>,
) -> Result<Session, Error> {
    let remote = match remote_protocol {
        Some(version) => version,
        None => {
            let mut out = Vec::new();
            put_i32(&mut out, wanted.protocol);
            conn.send(&out);
            conn.flush()?;
            read_i32(&mut conn)?
        }
    };
    if remote < OLDEST_PROTOCOL {
        return Err(protocol(format!(
            "the client's rsync speaks protocol {remote}; at least {OLDEST_PROTOCOL} (rsync 2.6.4) is needed"
        )));
    }
    let version = remote.min(wanted.protocol);
    let mut compat = 0;
    if version >= 30 {
        compat = read_varint(&mut conn)?;
        if compat & CF_INC_RECURSE != 0 {
            return Err(protocol(
                "the remote rsync turned on incremental recursion, which this side did not offer",
            ));
        }
    }
    let negotiated = compat & CF_VARINT_FLIST_FLAGS != 0;
    let checksum = if negotiated {
        let ours: Vec<&str> = wanted.checksums.iter().map(|a| a.name()).collect();
        let mut out = Vec::new();
        put_vstring(&mut out, ours.join(" ").as_bytes());
        conn.send(&out);
        conn.flush()?;
        let theirs = read_vstring(&mut conn, 1024)?;
        let theirs = String::from_utf8_lossy(&theirs).into_owned();
        let offered: Vec<&str> = theirs.split_ascii_whitespace().collect();
        wanted
            .checksums
            .iter()
            .copied()
            .find(|a| {
                offered.contains(&a.name())
                    || (*a == Algorithm::Xxh64 && offered.contains(&"xxhash"))
            })
            .ok_or_else(|| {
                protocol(format!(
                    "no checksum in common: this side offers {}, the client {theirs}",
                    ours.join(" ")
                ))
            })?
    } else if version >= 30 {
        Algorithm::Md5
    } else {
        Algorithm::Md4Old
    };
    let seed = read_i32(&mut conn)?;
    if compat & CF_CHKSUM_SEED_FIX == 0 && checksum == Algorithm::Md5 && seed != 0 {
        return Err(protocol(
            "the client's rsync lacks the checksum-seed fix needed for MD5 (upgrade it to 3.0 or later)",
        ));
    }
    Ok(Session {
        conn,
        protocol: version,
        checksum,
        seed,
        list: wanted.list_options(version, compat),
        ndx_out: NdxCodec::new(version),
        ndx_in: NdxCodec::new(version),
    })
}
