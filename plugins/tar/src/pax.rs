//! Writing POSIX (PAX) tar headers for a restore: one entry of the snapshot becomes a ustar
//! header block (through [`tar::Header`]), preceded by an `x` member whenever a field does not
//! fit ustar (long or non-UTF-8 names, nanosecond times, big ids, owner names, xattrs).

use hoard_plugin_sdk::transport::hoard::plugin::types::{Entry, EntryKind};
use tar::{EntryType, Header};

use crate::header::BLOCK;

/// A PAX record: `LEN key=value\n`, where LEN counts the whole record including itself.
pub fn record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let digits = |n: usize| n.to_string().len();
    let mut length = body + digits(body);
    while body + digits(length) != length {
        length = body + digits(length);
    }
    let mut out = Vec::with_capacity(length);
    out.extend_from_slice(length.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

/// Why an entry cannot be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError(pub String);

/// An entry as tar blocks: the PAX member (header and padded records) if needed, then the
/// entry's own header. `name` and `link` are the member name and hard link target as they go
/// into the stream (`./...`); a symlink's target comes from the entry. Xattrs whose name has
/// a `=` (which PAX cannot carry) are left out and returned, for the log.
pub fn encode(
    entry: &Entry,
    name: &[u8],
    link: Option<&[u8]>,
) -> Result<(Vec<u8>, Vec<Vec<u8>>), EncodeError> {
    let mut header = Header::new_ustar();
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    let (entry_type, size, target) = match &entry.kind {
        EntryKind::File => (EntryType::Regular, entry.size, None),
        EntryKind::Directory => (EntryType::Directory, 0, None),
        EntryKind::Symlink(t) => (EntryType::Symlink, 0, Some(t.as_slice())),
        EntryKind::Hardlink(_) => (EntryType::Link, 0, link),
        EntryKind::CharDevice(d) => {
            header
                .set_device_major(d.major)
                .map_err(|e| EncodeError(e.to_string()))?;
            header
                .set_device_minor(d.minor)
                .map_err(|e| EncodeError(e.to_string()))?;
            (EntryType::Char, 0, None)
        }
        EntryKind::BlockDevice(d) => {
            header
                .set_device_major(d.major)
                .map_err(|e| EncodeError(e.to_string()))?;
            header
                .set_device_minor(d.minor)
                .map_err(|e| EncodeError(e.to_string()))?;
            (EntryType::Block, 0, None)
        }
        EntryKind::Fifo => (EntryType::Fifo, 0, None),
        EntryKind::Socket => {
            return Err(EncodeError("sockets cannot be restored through tar".into()));
        }
    };
    header.set_entry_type(entry_type);

    if name.len() > 100 || std::str::from_utf8(name).is_err() {
        records.extend(record(b"path", name));
    }
    let short_name = &name[..name.len().min(100)];
    header.as_old_mut().name[..short_name.len()].copy_from_slice(short_name);
    if let Some(target) = target {
        if target.len() > 100 || std::str::from_utf8(target).is_err() {
            records.extend(record(b"linkpath", target));
        }
        let short = &target[..target.len().min(100)];
        header.as_old_mut().linkname[..short.len()].copy_from_slice(short);
    }

    const USTAR_SIZE_MAX: u64 = 0o77_777_777_777;
    const USTAR_ID_MAX: u32 = 0o7_777_777;
    header.set_size(size.min(USTAR_SIZE_MAX));
    if size > USTAR_SIZE_MAX {
        records.extend(record(b"size", size.to_string().as_bytes()));
    }
    header.set_mode(entry.mode & 0o7777);
    header.set_uid(u64::from(entry.uid.min(USTAR_ID_MAX)));
    if entry.uid > USTAR_ID_MAX {
        records.extend(record(b"uid", entry.uid.to_string().as_bytes()));
    }
    header.set_gid(u64::from(entry.gid.min(USTAR_ID_MAX)));
    if entry.gid > USTAR_ID_MAX {
        records.extend(record(b"gid", entry.gid.to_string().as_bytes()));
    }
    let seconds = entry.mtime.seconds;
    header.set_mtime(u64::try_from(seconds).unwrap_or(0).min(0o77_777_777_777));
    if entry.mtime.nanoseconds != 0 || !(0..=0o77_777_777_777).contains(&seconds) {
        records.extend(record(
            b"mtime",
            format_time(seconds, entry.mtime.nanoseconds).as_bytes(),
        ));
    }
    for (value, is_user) in [(&entry.user, true), (&entry.group, false)] {
        let Some(value) = value else { continue };
        let fits = value.len() <= 32 && value.is_ascii();
        let set = if is_user {
            header.set_username(value)
        } else {
            header.set_groupname(value)
        };
        if !fits || set.is_err() {
            records.extend(record(
                if is_user { b"uname" } else { b"gname" },
                value.as_bytes(),
            ));
        }
    }
    for xattr in &entry.xattrs {
        if xattr.name.contains(&b'=') || xattr.name.contains(&b'\n') {
            skipped.push(xattr.name.clone());
            continue;
        }
        let mut key = b"SCHILY.xattr.".to_vec();
        key.extend_from_slice(&xattr.name);
        records.extend(record(&key, &xattr.value));
    }
    header.set_cksum();

    let mut out = Vec::with_capacity(3 * BLOCK + records.len());
    if !records.is_empty() {
        let mut pax = Header::new_ustar();
        pax.set_entry_type(EntryType::XHeader);
        let pax_name = b"./PaxHeaders/entry";
        pax.as_old_mut().name[..pax_name.len()].copy_from_slice(pax_name);
        pax.set_size(records.len() as u64);
        pax.set_mode(0o644);
        pax.set_cksum();
        out.extend_from_slice(pax.as_bytes());
        out.extend_from_slice(&records);
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    }
    out.extend_from_slice(header.as_bytes());
    Ok((out, skipped))
}

/// A time as PAX writes it: `-1.5` is seconds -2 plus 5e8 ns.
pub fn format_time(seconds: i64, nanoseconds: u32) -> String {
    if nanoseconds == 0 {
        return seconds.to_string();
    }
    if seconds < 0 {
        let whole = seconds + 1;
        let fraction = 1_000_000_000 - nanoseconds;
        let sign = if whole == 0 { "-" } else { "" };
        format!("{sign}{whole}.{fraction:09}")
    } else {
        format!("{seconds}.{nanoseconds:09}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::{Extensions, MemberKind, decode, parse_time};
    use hoard_plugin_sdk::transport::hoard::plugin::types::{Timestamp, Xattr};

    #[test]
    fn record_lengths_count_themselves() {
        assert_eq!(record(b"a", b"b"), b"6 a=b\n");
        let r = record(b"path", &[b'x'; 95]);
        assert_eq!(r.len().to_string(), String::from_utf8_lossy(&r[..3]));
        for n in 0..300 {
            let r = record(b"k", &vec![b'v'; n]);
            let len: usize = String::from_utf8_lossy(r.split(|b| *b == b' ').next().unwrap())
                .parse()
                .unwrap();
            assert_eq!(len, r.len(), "value of {n} bytes");
        }
    }

    #[test]
    fn times_round_trip() {
        for (s, ns) in [
            (0, 0),
            (5, 1),
            (-1, 500_000_000),
            (-2, 1),
            (1_700_000_000, 999_999_999),
        ] {
            assert_eq!(
                parse_time(format_time(s, ns).as_bytes()),
                Some((s, ns)),
                "{s} {ns}"
            );
        }
    }

    #[test]
    fn an_entry_round_trips_through_the_decoder() {
        let name = [b"./".as_slice(), &[b'n'; 150], b"\xff"].concat();
        let mut entry = Entry::file(b"x".to_vec(), 1 << 40);
        entry.mode = 0o6755;
        entry.uid = 5_000_000;
        entry.gid = 7;
        entry.user = Some("a-very-long-user-name-that-does-not-fit-ustar".into());
        entry.group = Some("wheel".into());
        entry.mtime = Timestamp {
            seconds: 1_700_000_000,
            nanoseconds: 42,
        };
        entry.xattrs = vec![
            Xattr {
                name: b"user.k".to_vec(),
                value: b"\0bin\n".to_vec(),
            },
            Xattr {
                name: b"user.a=b".to_vec(),
                value: b"x".to_vec(),
            },
        ];
        let (blocks, skipped) = encode(&entry, &name, None).unwrap();
        assert_eq!(skipped, vec![b"user.a=b".to_vec()]);
        assert_eq!(blocks.len() % BLOCK, 0);
        let mut ext = Extensions::default();
        let first: &[u8; BLOCK] = blocks[..BLOCK].try_into().unwrap();
        let pax = decode(first, &mut ext).unwrap();
        assert_eq!(pax.kind, MemberKind::PaxLocal);
        let data = &blocks[BLOCK..BLOCK + pax.data_size as usize];
        ext.apply_pax(data).unwrap();
        let last: &[u8; BLOCK] = blocks[blocks.len() - BLOCK..].try_into().unwrap();
        let m = decode(last, &mut ext).unwrap();
        assert_eq!(m.name, name);
        assert_eq!(
            (m.mode, m.uid, m.gid, m.size),
            (0o6755, 5_000_000, 7, 1 << 40)
        );
        assert_eq!(m.mtime, (1_700_000_000, 42));
        assert_eq!(m.user, entry.user);
        assert_eq!(m.group.as_deref(), Some("wheel"));
        assert_eq!(m.xattrs, vec![(b"user.k".to_vec(), b"\0bin\n".to_vec())]);
    }

    #[test]
    fn links_and_devices_encode() {
        let entry = Entry::new(b"l".to_vec(), EntryKind::Hardlink(b"t".to_vec()));
        let (blocks, _) = encode(&entry, b"./l", Some(b"./t")).unwrap();
        let m = decode(
            blocks[..BLOCK].try_into().unwrap(),
            &mut Extensions::default(),
        )
        .unwrap();
        assert_eq!((m.kind, m.link), (MemberKind::Hardlink, b"./t".to_vec()));
        let dev =
            hoard_plugin_sdk::transport::hoard::plugin::types::DeviceNumber { major: 8, minor: 1 };
        let entry = Entry::new(b"d".to_vec(), EntryKind::BlockDevice(dev));
        let (blocks, _) = encode(&entry, b"./d", None).unwrap();
        let m = decode(
            blocks[..BLOCK].try_into().unwrap(),
            &mut Extensions::default(),
        )
        .unwrap();
        assert_eq!(m.kind, MemberKind::BlockDevice(8, 1));
        assert!(encode(&Entry::new(b"s".to_vec(), EntryKind::Socket), b"./s", None).is_err());
    }
}
