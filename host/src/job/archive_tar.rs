//! A backup (or part of it) written as a tar stream (POSIX/PAX: long and non-UTF-8 names,
//! owners by name and id, nanosecond times, xattrs), for `hoard restore --tar` and downloads.

use std::io::{Read, Write};

use super::share::relative_to;
use hoard_pool::{Entry, EntryKind, SnapshotReader};
use tar::{EntryType, Header};

/// Why a tar stream could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Reading the backup failed.
    #[error("reading the backup: {0}")]
    Pool(#[from] hoard_pool::PoolError),
    /// Writing the stream failed.
    #[error("writing the tar stream: {0}")]
    Write(#[from] std::io::Error),
}

/// What was written.
#[derive(Debug, Default, Clone, Copy)]
pub struct ArchiveSummary {
    /// Entries written.
    pub entries: u64,
    /// Content bytes written.
    pub bytes: u64,
}

/// A time as a PAX decimal: the nanoseconds count forward from `seconds`, so a time before
/// 1970 with nanoseconds is written as the negative decimal it is (-1 s + 0.25 s = "-0.75").
fn pax_time(seconds: i64, nanos: u32) -> String {
    if seconds < 0 && nanos > 0 {
        format!("-{}.{:09}", -(seconds + 1), 1_000_000_000 - nanos)
    } else {
        format!("{seconds}.{nanos:09}")
    }
}

/// PAX records for what a plain header cannot hold.
fn pax_records(name: &[u8], entry: &Entry, link: Option<&[u8]>) -> Vec<(String, Vec<u8>)> {
    let mut records = vec![
        ("path".to_string(), name.to_vec()),
        (
            "mtime".to_string(),
            pax_time(entry.mtime.seconds, entry.mtime.nanos).into_bytes(),
        ),
    ];
    if let Some(link) = link {
        records.push(("linkpath".to_string(), link.to_vec()));
    }
    if let Some(user) = &entry.user {
        records.push(("uname".to_string(), user.clone().into_bytes()));
    }
    if let Some(group) = &entry.group {
        records.push(("gname".to_string(), group.clone().into_bytes()));
    }
    records.push(("uid".to_string(), entry.uid.to_string().into_bytes()));
    records.push(("gid".to_string(), entry.gid.to_string().into_bytes()));
    for x in &entry.xattrs {
        records.push((
            format!("SCHILY.xattr.{}", String::from_utf8_lossy(&x.name)),
            x.value.clone(),
        ));
    }
    records
}

fn pax_block(records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        // "LEN key=value\n", where LEN counts itself.
        let body = key.len() + value.len() + 3;
        let mut len = body + body.to_string().len();
        if len.to_string().len() != body.to_string().len() {
            len += 1;
        }
        out.extend_from_slice(format!("{len} {key}=").as_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

fn write_padded(out: &mut impl Write, data: &[u8]) -> std::io::Result<()> {
    out.write_all(data)?;
    let pad = (512 - data.len() % 512) % 512;
    out.write_all(&[0u8; 512][..pad])
}

/// Writes the subtree `source` of `reader` to `out` as a tar stream; paths are relative to
/// `source` and prefixed with `./`.
pub fn write_tar(
    reader: &SnapshotReader,
    source: &[u8],
    mut out: impl Write,
) -> Result<ArchiveSummary, ArchiveError> {
    let io = ArchiveError::Write;
    let mut summary = ArchiveSummary::default();
    let mut buffer = vec![0u8; 1 << 20];
    for entry in reader.walk(source) {
        let entry = entry?;
        let Some(rel) = relative_to(source, &entry.path) else {
            continue;
        };
        let mut name = b"./".to_vec();
        name.extend_from_slice(rel);
        let (kind, link, size): (EntryType, Option<Vec<u8>>, u64) = match &entry.kind {
            EntryKind::File => (EntryType::Regular, None, entry.size),
            EntryKind::Directory => (EntryType::Directory, None, 0),
            EntryKind::Symlink { target } => (EntryType::Symlink, Some(target.clone()), 0),
            EntryKind::Hardlink { target } => {
                let Some(target_rel) = relative_to(source, target) else {
                    continue;
                };
                let mut link = b"./".to_vec();
                link.extend_from_slice(target_rel);
                (EntryType::Link, Some(link), 0)
            }
            EntryKind::CharDevice(_) => (EntryType::Char, None, 0),
            EntryKind::BlockDevice(_) => (EntryType::Block, None, 0),
            EntryKind::Fifo => (EntryType::Fifo, None, 0),
            EntryKind::Socket => continue,
        };
        let records = pax_records(&name, &entry, link.as_deref());
        let pax = pax_block(&records);
        let mut pax_header = Header::new_ustar();
        pax_header.set_entry_type(EntryType::XHeader);
        pax_header.set_size(pax.len() as u64);
        pax_header.set_mode(0o644);
        let _ = pax_header.set_path("././@PaxHeader");
        pax_header.set_cksum();
        out.write_all(pax_header.as_bytes()).map_err(io)?;
        write_padded(&mut out, &pax).map_err(io)?;

        let mut header = Header::new_ustar();
        header.set_entry_type(kind);
        // The real name is in the PAX record; the plain field gets a short, safe stand-in.
        let short: String = String::from_utf8_lossy(&name)
            .chars()
            .filter(|c| c.is_ascii() && *c != '\0')
            .take(90)
            .collect();
        let _ = header.set_path(if short.is_empty() { "./x" } else { &short });
        header.set_mode(entry.mode & 0o7777);
        header.set_uid(u64::from(entry.uid).min(0o7777777));
        header.set_gid(u64::from(entry.gid).min(0o7777777));
        header.set_mtime(entry.mtime.seconds.max(0) as u64);
        header.set_size(size);
        if let EntryKind::CharDevice(d) | EntryKind::BlockDevice(d) = &entry.kind {
            let _ = header.set_device_major(d.major);
            let _ = header.set_device_minor(d.minor);
        }
        header.set_cksum();
        out.write_all(header.as_bytes()).map_err(io)?;
        if kind == EntryType::Regular {
            let mut content = reader.open_file(&entry.path)?.take(size);
            let mut written = 0u64;
            loop {
                let n = content.read(&mut buffer).map_err(io)?;
                if n == 0 {
                    break;
                }
                out.write_all(&buffer[..n]).map_err(io)?;
                written += n as u64;
            }
            if written != size {
                return Err(io(std::io::Error::other(format!(
                    "{}: {written} bytes stored, {size} recorded",
                    String::from_utf8_lossy(&entry.path)
                ))));
            }
            let pad = ((512 - size % 512) % 512) as usize;
            out.write_all(&[0u8; 512][..pad]).map_err(io)?;
            summary.bytes += size;
        }
        summary.entries += 1;
    }
    out.write_all(&[0u8; 1024]).map_err(io)?;
    out.flush().map_err(io)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pax_times_before_1970_keep_their_value() {
        assert_eq!(super::pax_time(-1, 250_000_000), "-0.750000000");
        assert_eq!(
            super::pax_time(-31_536_000, 123_456_789),
            "-31535999.876543211"
        );
        assert_eq!(super::pax_time(5, 1), "5.000000001");
        assert_eq!(super::pax_time(-5, 0), "-5.000000000");
    }
}
