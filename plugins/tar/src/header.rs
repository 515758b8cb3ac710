//! Decoding one member of a POSIX (PAX) tar stream from its header blocks: the 512-byte ustar
//! header (through the `tar` crate's [`tar::Header`]), the PAX extended records that precede
//! it (through [`tar::PaxExtensions`]), GNU long names, and GNU's PAX sparse 1.0 map.
//!
//! Nothing here reads a stream: the caller hands over blocks and record data it has read, so
//! every rule about what a client may send is testable natively. Every number a client sends
//! is checked before use; nothing here panics on input.

use tar::{EntryType, Header};

/// The size of a tar block.
pub const BLOCK: usize = 512;
/// Largest PAX record set or GNU long name accepted (they are read into memory).
pub const MAX_META: u64 = 1 << 20;
/// Largest file size believed (2^53: more than any disk, and exact in a double).
pub const MAX_SIZE: u64 = 1 << 53;
/// Largest sparse map accepted, in bytes of its text.
pub const MAX_SPARSE_MAP: usize = 4 << 20;

/// Why a header could not be decoded. Each of these ends the job: after a bad header the
/// stream cannot be followed any further.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad(message: impl Into<String>) -> DecodeError {
    DecodeError(message.into())
}

/// Bytes of content blocks for `size` bytes of content (padded to whole blocks).
pub fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK as u64) * BLOCK as u64
}

/// What a header block says an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberKind {
    /// A regular file (also contiguous files).
    File,
    /// A directory.
    Directory,
    /// A symbolic link to `link`.
    Symlink,
    /// A hard link to `link`.
    Hardlink,
    /// A character device.
    CharDevice(u32, u32),
    /// A block device.
    BlockDevice(u32, u32),
    /// A named pipe.
    Fifo,
    /// PAX extended records for the next member.
    PaxLocal,
    /// PAX records for every following member.
    PaxGlobal,
    /// A GNU long name for the next member.
    LongName,
    /// A GNU long link target for the next member.
    LongLink,
    /// Anything else (the type flag).
    Other(u8),
}

/// One decoded header, with the extensions that preceded it applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member name as stored (bytes).
    pub name: Vec<u8>,
    /// What it is.
    pub kind: MemberKind,
    /// The link target of a symlink or hard link.
    pub link: Vec<u8>,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Owner name.
    pub user: Option<String>,
    /// Group name.
    pub group: Option<String>,
    /// Modification time: seconds and nanoseconds.
    pub mtime: (i64, u32),
    /// Bytes of data after the header (before padding).
    pub data_size: u64,
    /// The file's apparent size (differs from `data_size` for sparse files).
    pub size: u64,
    /// Extended attributes.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// The data area starts with a GNU sparse 1.0 map.
    pub sparse: bool,
}

/// What PAX records and GNU long names said about the next member.
#[derive(Debug, Default, Clone)]
pub struct Extensions {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    mtime: Option<(i64, u32)>,
    uid: Option<u64>,
    gid: Option<u64>,
    uname: Option<Vec<u8>>,
    gname: Option<Vec<u8>>,
    size: Option<u64>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    sparse_name: Option<Vec<u8>>,
    sparse_realsize: Option<u64>,
    sparse_major: Option<u64>,
    sparse_minor: Option<u64>,
}

impl Extensions {
    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.path.is_none()
            && self.linkpath.is_none()
            && self.mtime.is_none()
            && self.uid.is_none()
            && self.gid.is_none()
            && self.uname.is_none()
            && self.gname.is_none()
            && self.size.is_none()
            && self.xattrs.is_empty()
            && self.sparse_major.is_none()
    }

    /// Applies a PAX record set (the data of an `x` member).
    pub fn apply_pax(&mut self, data: &[u8]) -> Result<(), DecodeError> {
        for record in pax_records(data) {
            let (key, value) = record?;
            match key {
                b"path" => self.path = Some(value.to_vec()),
                b"linkpath" => self.linkpath = Some(value.to_vec()),
                b"mtime" => {
                    self.mtime = Some(
                        parse_time(value)
                            .ok_or_else(|| bad(format!("bad PAX mtime {:?}", lossy(value))))?,
                    )
                }
                b"uid" => self.uid = Some(parse_decimal(value, "uid")?),
                b"gid" => self.gid = Some(parse_decimal(value, "gid")?),
                b"uname" => self.uname = Some(value.to_vec()),
                b"gname" => self.gname = Some(value.to_vec()),
                b"size" => self.size = Some(parse_decimal(value, "size")?),
                b"GNU.sparse.name" => self.sparse_name = Some(value.to_vec()),
                b"GNU.sparse.realsize" => {
                    self.sparse_realsize = Some(parse_decimal(value, "GNU.sparse.realsize")?)
                }
                b"GNU.sparse.major" => {
                    self.sparse_major = Some(parse_decimal(value, "GNU.sparse.major")?)
                }
                b"GNU.sparse.minor" => {
                    self.sparse_minor = Some(parse_decimal(value, "GNU.sparse.minor")?)
                }
                _ => {
                    if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                        self.xattrs.push((name.to_vec(), value.to_vec()));
                    }
                    // atime, ctime, comment, charset, GNU.dumpdir, ...: not part of an entry.
                }
            }
        }
        Ok(())
    }

    /// A GNU long name (`L`): the data up to its first NUL.
    pub fn apply_long_name(&mut self, data: &[u8]) {
        self.path = Some(until_nul(data).to_vec());
    }

    /// A GNU long link target (`K`).
    pub fn apply_long_link(&mut self, data: &[u8]) {
        self.linkpath = Some(until_nul(data).to_vec());
    }
}

/// The records of a PAX extended header: `LEN key=value\n`, LEN counting the whole record,
/// so values may hold any byte (xattr values do; a reader splitting at newlines breaks them).
fn pax_records(data: &[u8]) -> impl Iterator<Item = Result<(&[u8], &[u8]), DecodeError>> {
    let mut rest = data;
    std::iter::from_fn(move || {
        // GNU tar pads nothing inside the data, but tolerate trailing NULs.
        if rest.is_empty() || rest.iter().all(|b| *b == 0) {
            return None;
        }
        let parsed = (|| {
            let space = rest
                .iter()
                .position(|b| *b == b' ')
                .filter(|p| *p > 0 && *p <= 20)?;
            let length: usize = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
            let record = rest.get(..length)?;
            let body = record.get(space + 1..)?.strip_suffix(b"\n")?;
            let equals = body.iter().position(|b| *b == b'=')?;
            rest = &rest[length..];
            Some((&body[..equals], &body[equals + 1..]))
        })();
        match parsed {
            Some(kv) => Some(Ok(kv)),
            None => {
                rest = &[];
                Some(Err(bad("malformed PAX record")))
            }
        }
    })
}

fn until_nul(data: &[u8]) -> &[u8] {
    data.split(|b| *b == 0).next().unwrap_or(data)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn parse_decimal(value: &[u8], what: &str) -> Result<u64, DecodeError> {
    std::str::from_utf8(value)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad PAX {what} {:?}", lossy(value))))
}

/// A PAX time (`1795539188.608482468`, `-1.5`) as seconds and nanoseconds (always added).
pub fn parse_time(value: &[u8]) -> Option<(i64, u32)> {
    let text = std::str::from_utf8(value).ok()?;
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let seconds: i64 = whole.parse().ok()?;
    let mut nanos: u32 = 0;
    for (i, digit) in fraction.bytes().take(9).enumerate() {
        nanos += u32::from(digit - b'0') * 10u32.pow(8 - i as u32);
    }
    if !negative {
        return Some((seconds, nanos));
    }
    if nanos == 0 {
        Some((seconds.checked_neg()?, 0))
    } else {
        Some((
            seconds.checked_neg()?.checked_sub(1)?,
            1_000_000_000 - nanos,
        ))
    }
}

/// Whether a block is all zeros (the end of an archive).
pub fn is_zero_block(block: &[u8; BLOCK]) -> bool {
    block.iter().all(|b| *b == 0)
}

fn checksum_ok(block: &[u8; BLOCK]) -> bool {
    let header = Header::from_byte_slice(block);
    let Ok(stored) = header.cksum() else {
        return false;
    };
    let unsigned: u32 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(*b)
            }
        })
        .sum();
    // Some old tars summed signed chars; accept either.
    let signed: i64 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                i64::from(b' ')
            } else {
                i64::from(*b as i8)
            }
        })
        .sum();
    stored == unsigned || i64::from(stored) == signed
}

fn field<T>(value: std::io::Result<T>, what: &str) -> Result<T, DecodeError> {
    value.map_err(|e| bad(format!("bad header field {what}: {e}")))
}

fn id(value: u64, what: &str) -> Result<u32, DecodeError> {
    u32::try_from(value).map_err(|_| bad(format!("{what} {value} does not fit 32 bits")))
}

/// Decodes a header block, applying `ext` (taken: extensions apply to one member).
pub fn decode(block: &[u8; BLOCK], ext_slot: &mut Extensions) -> Result<Member, DecodeError> {
    if !checksum_ok(block) {
        return Err(bad(
            "header checksum mismatch (not a tar stream, or a corrupted one)",
        ));
    }
    let ext = std::mem::take(ext_slot);
    let header = Header::from_byte_slice(block);
    let kind = match header.entry_type() {
        EntryType::Regular | EntryType::Continuous => MemberKind::File,
        EntryType::Directory => MemberKind::Directory,
        EntryType::Symlink => MemberKind::Symlink,
        EntryType::Link => MemberKind::Hardlink,
        EntryType::Char | EntryType::Block => {
            let major = field(header.device_major(), "devmajor")?.unwrap_or(0);
            let minor = field(header.device_minor(), "devminor")?.unwrap_or(0);
            if header.entry_type() == EntryType::Char {
                MemberKind::CharDevice(major, minor)
            } else {
                MemberKind::BlockDevice(major, minor)
            }
        }
        EntryType::Fifo => MemberKind::Fifo,
        EntryType::XHeader => MemberKind::PaxLocal,
        EntryType::XGlobalHeader => MemberKind::PaxGlobal,
        EntryType::GNULongName => MemberKind::LongName,
        EntryType::GNULongLink => MemberKind::LongLink,
        other => MemberKind::Other(other.as_byte()),
    };
    let header_size = field(header.size(), "size")?;
    if matches!(
        kind,
        MemberKind::PaxLocal | MemberKind::PaxGlobal | MemberKind::LongName | MemberKind::LongLink
    ) {
        // Their own fields do not matter; the extensions wait for the member they describe.
        *ext_slot = ext;
        return Ok(Member {
            name: Vec::new(),
            kind,
            link: Vec::new(),
            mode: 0,
            uid: 0,
            gid: 0,
            user: None,
            group: None,
            mtime: (0, 0),
            data_size: header_size,
            size: 0,
            xattrs: Vec::new(),
            sparse: false,
        });
    }
    let data_size = ext.size.unwrap_or(header_size);
    if data_size > MAX_SIZE {
        return Err(bad(format!("declared size {data_size} is absurd")));
    }
    let mode = field(header.mode(), "mode")? & 0o7777;
    let uid = id(
        ext.uid.map_or_else(|| field(header.uid(), "uid"), Ok)?,
        "uid",
    )?;
    let gid = id(
        ext.gid.map_or_else(|| field(header.gid(), "gid"), Ok)?,
        "gid",
    )?;
    let mtime = match ext.mtime {
        Some(t) => t,
        None => {
            let seconds = field(header.mtime(), "mtime")?;
            (
                i64::try_from(seconds).map_err(|_| bad("mtime out of range"))?,
                0,
            )
        }
    };
    let name_text = |bytes: Option<Vec<u8>>| bytes.filter(|b| !b.is_empty()).map(|b| lossy(&b));
    let user = name_text(
        ext.uname
            .or_else(|| header.username_bytes().map(<[u8]>::to_vec)),
    );
    let group = name_text(
        ext.gname
            .or_else(|| header.groupname_bytes().map(<[u8]>::to_vec)),
    );
    let link = ext
        .linkpath
        .or_else(|| header.link_name_bytes().map(|l| l.into_owned()))
        .unwrap_or_default();
    let sparse = kind == MemberKind::File && ext.sparse_major.is_some();
    if sparse && (ext.sparse_major != Some(1) || ext.sparse_minor.unwrap_or(0) != 0) {
        return Err(bad(format!(
            "GNU sparse format {}.{} is not supported (only 1.0)",
            ext.sparse_major.unwrap_or(0),
            ext.sparse_minor.unwrap_or(0)
        )));
    }
    let size = if sparse {
        let real = ext
            .sparse_realsize
            .ok_or_else(|| bad("sparse file without GNU.sparse.realsize"))?;
        if real > MAX_SIZE {
            return Err(bad(format!("declared sparse size {real} is absurd")));
        }
        real
    } else if kind == MemberKind::File {
        data_size
    } else {
        0
    };
    let name = if sparse {
        ext.sparse_name.or(ext.path)
    } else {
        ext.path
    }
    .unwrap_or_else(|| header.path_bytes().into_owned());
    Ok(Member {
        name,
        kind,
        link,
        mode,
        uid,
        gid,
        user,
        group,
        mtime,
        data_size,
        size,
        xattrs: ext.xattrs,
        sparse,
    })
}

/// One stretch of data of a sparse file: `length` bytes at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Where it starts in the file.
    pub offset: u64,
    /// How long it is.
    pub length: u64,
}

/// A parsed GNU sparse 1.0 map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparseMap {
    /// The data segments, in order.
    pub segments: Vec<Segment>,
    /// Bytes of the data area the map took (whole blocks).
    pub map_bytes: u64,
}

/// Parses the map at the start of a sparse member's data area from `text` (whole blocks
/// read so far). `Ok(None)`: more blocks are needed. The map is checked against the file's
/// real size and the member's data size, so the content that follows can be trusted to fit.
pub fn parse_sparse_map(
    text: &[u8],
    real_size: u64,
    data_size: u64,
) -> Result<Option<SparseMap>, DecodeError> {
    let mut numbers = Vec::new();
    let mut rest = text;
    let mut consumed = 0usize;
    let mut wanted: Option<u64> = None;
    loop {
        if let Some(count) = wanted
            && numbers.len() as u64 == count * 2
        {
            break;
        }
        let Some(end) = rest.iter().position(|b| *b == b'\n') else {
            if text.len() >= MAX_SPARSE_MAP {
                return Err(bad("sparse map too large"));
            }
            return Ok(None);
        };
        let value = parse_decimal(&rest[..end], "sparse map number")?;
        consumed += end + 1;
        rest = &rest[end + 1..];
        match wanted {
            None => {
                if value > (MAX_SPARSE_MAP / 4) as u64 {
                    return Err(bad(format!("sparse map of {value} segments")));
                }
                wanted = Some(value);
            }
            Some(_) => numbers.push(value),
        }
    }
    let map_bytes = padded(consumed as u64);
    let mut segments = Vec::with_capacity(numbers.len() / 2);
    let mut position = 0u64;
    let mut stored = 0u64;
    for pair in numbers.chunks_exact(2) {
        let (offset, length) = (pair[0], pair[1]);
        let end = offset
            .checked_add(length)
            .ok_or_else(|| bad("sparse segment overflows"))?;
        if offset < position || end > real_size {
            return Err(bad(format!(
                "sparse segment {offset}+{length} out of order or past the size {real_size}"
            )));
        }
        position = end;
        stored += length;
        segments.push(Segment { offset, length });
    }
    if map_bytes + stored != data_size {
        return Err(bad(format!(
            "sparse map says {} bytes of data, the header {data_size}",
            map_bytes + stored
        )));
    }
    Ok(Some(SparseMap {
        segments,
        map_bytes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
        crate::pax::record(key.as_bytes(), value)
    }

    fn ustar(name: &[u8], kind: EntryType, size: u64) -> [u8; BLOCK] {
        let mut h = Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o4755);
        h.set_uid(1000);
        h.set_gid(100);
        h.set_mtime(1_700_000_000);
        h.set_username("alice").unwrap();
        h.set_cksum();
        *h.as_bytes()
    }

    #[test]
    fn a_plain_header_decodes() {
        let block = ustar(b"./a/b", EntryType::Regular, 42);
        let m = decode(&block, &mut Extensions::default()).unwrap();
        assert_eq!(m.name, b"./a/b");
        assert_eq!(m.kind, MemberKind::File);
        assert_eq!(
            (m.mode, m.uid, m.gid, m.size, m.data_size),
            (0o4755, 1000, 100, 42, 42)
        );
        assert_eq!(m.user.as_deref(), Some("alice"));
        assert_eq!(m.group, None);
        assert_eq!(m.mtime, (1_700_000_000, 0));
    }

    #[test]
    fn a_bad_checksum_is_refused() {
        let mut block = ustar(b"x", EntryType::Regular, 1);
        block[0] = b'y';
        assert!(decode(&block, &mut Extensions::default()).is_err());
    }

    #[test]
    fn pax_records_override_the_header() {
        let mut data = pax_record("path", b"./very/long/\xffname");
        data.extend(pax_record("mtime", b"1700000000.123456789"));
        data.extend(pax_record("uid", b"4000000000"));
        data.extend(pax_record("uname", b"bob"));
        data.extend(pax_record("SCHILY.xattr.user.note", b"a=b\0\n"));
        data.extend(pax_record("atime", b"1"));
        let mut ext = Extensions::default();
        ext.apply_pax(&data).unwrap();
        let m = decode(&ustar(b"short", EntryType::Regular, 0), &mut ext).unwrap();
        assert_eq!(m.name, b"./very/long/\xffname");
        assert_eq!(m.mtime, (1_700_000_000, 123_456_789));
        assert_eq!(m.uid, 4_000_000_000);
        assert_eq!(m.user.as_deref(), Some("bob"));
        assert_eq!(m.xattrs, vec![(b"user.note".to_vec(), b"a=b\0\n".to_vec())]);
        assert!(ext.is_empty(), "extensions apply to one member only");
    }

    #[test]
    fn absurd_sizes_are_refused() {
        let mut ext = Extensions::default();
        ext.apply_pax(&pax_record("size", b"99999999999999999999"))
            .unwrap_err();
        ext.apply_pax(&pax_record("size", b"18014398509481984"))
            .unwrap();
        let err = decode(&ustar(b"x", EntryType::Regular, 0), &mut ext).unwrap_err();
        assert!(err.0.contains("absurd"), "{err}");
        assert!(Extensions::default().apply_pax(b"9999 path=x\n").is_err());
    }

    #[test]
    fn times_parse_with_sign_and_fraction() {
        assert_eq!(parse_time(b"12"), Some((12, 0)));
        assert_eq!(parse_time(b"12.5"), Some((12, 500_000_000)));
        assert_eq!(parse_time(b"-1.5"), Some((-2, 500_000_000)));
        assert_eq!(parse_time(b"-3"), Some((-3, 0)));
        assert_eq!(parse_time(b"1.0000000019"), Some((1, 1)));
        assert_eq!(parse_time(b"x"), None);
        assert_eq!(parse_time(b""), None);
        assert_eq!(parse_time(b"1.-5"), None);
    }

    #[test]
    fn sparse_members_take_the_real_name_and_size() {
        let mut data = pax_record("GNU.sparse.major", b"1");
        data.extend(pax_record("GNU.sparse.minor", b"0"));
        data.extend(pax_record("GNU.sparse.name", b"./holes"));
        data.extend(pax_record("GNU.sparse.realsize", b"1048576"));
        let mut ext = Extensions::default();
        ext.apply_pax(&data).unwrap();
        let m = decode(
            &ustar(b"./GNUSparseFile.1/holes", EntryType::Regular, 1024),
            &mut ext,
        )
        .unwrap();
        assert!(m.sparse);
        assert_eq!(m.name, b"./holes");
        assert_eq!((m.size, m.data_size), (1_048_576, 1024));
    }

    #[test]
    fn sparse_maps_are_checked() {
        let mut text = b"2\n0\n10\n1000\n2\n".to_vec();
        assert_eq!(parse_sparse_map(&text[..5], 2000, 524), Ok(None));
        text.resize(BLOCK, 0);
        let map = parse_sparse_map(&text, 2000, 524).unwrap().unwrap();
        assert_eq!(map.map_bytes, 512);
        assert_eq!(
            map.segments,
            vec![
                Segment {
                    offset: 0,
                    length: 10
                },
                Segment {
                    offset: 1000,
                    length: 2
                }
            ]
        );
        // Past the real size, out of order, or disagreeing with the header: refused.
        assert!(parse_sparse_map(&text, 1001, 524).is_err());
        assert!(parse_sparse_map(b"2\n100\n1\n0\n1\n", 2000, 514).is_err());
        assert!(parse_sparse_map(&text, 2000, 600).is_err());
        assert!(parse_sparse_map(b"x\n", 2000, 600).is_err());
    }

    #[test]
    fn padding_rounds_up() {
        assert_eq!(padded(0), 0);
        assert_eq!(padded(1), 512);
        assert_eq!(padded(512), 512);
        assert_eq!(padded(513), 1024);
    }
}
