//! `hoard ls HOST[:N] [PATH]`: browse a backup (every backup browses as a full one).

use clap::Args;

use super::Cli;
use super::context::{Context, HostSpec};
use super::list::format_time;
use super::output::outln;
use hoard_pool::{Entry, EntryKind};

/// Arguments of `hoard ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// `HOST` (latest backup) or `HOST:N`.
    pub spec: HostSpec,
    /// A path in the backup (client paths, e.g. `/usr/share/doc`); the root when left out.
    #[arg(default_value = "/")]
    pub path: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `hoard ls`.
pub fn run(cli: &Cli, args: &LsArgs) -> anyhow::Result<()> {
    let context = Context::open(cli)?;
    let id = context.resolve_spec(&args.spec)?;
    let reader = context.pool.snapshot(&id)?;
    let path = args.path.trim_start_matches('/').as_bytes();
    let entry = reader.lookup(path)?.ok_or_else(|| {
        anyhow::anyhow!(
            "{} is not in backup #{} of {}",
            args.path,
            id.number,
            id.host
        )
    })?;
    let entries = if matches!(entry.kind, EntryKind::Directory) {
        reader.list_dir(path)?
    } else {
        vec![entry]
    };
    if args.json {
        let list: Vec<_> = entries.iter().map(entry_json).collect();
        outln!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    for e in &entries {
        let name = e.path.rsplit(|b| *b == b'/').next().unwrap_or(&e.path);
        let mut line = format!(
            "{} {:>8} {:>8} {:>12} {} {}",
            mode_string(e),
            e.user.clone().unwrap_or_else(|| e.uid.to_string()),
            e.group.clone().unwrap_or_else(|| e.gid.to_string()),
            e.size,
            format_time(e.mtime.seconds),
            String::from_utf8_lossy(name)
        );
        match &e.kind {
            EntryKind::Symlink { target } => {
                line.push_str(&format!(" -> {}", String::from_utf8_lossy(target)))
            }
            EntryKind::Hardlink { target } => {
                line.push_str(&format!(" => /{}", String::from_utf8_lossy(target)))
            }
            _ => {}
        }
        outln!("{line}");
    }
    Ok(())
}

fn mode_string(e: &Entry) -> String {
    let kind = match e.kind {
        EntryKind::File => '-',
        EntryKind::Directory => 'd',
        EntryKind::Symlink { .. } => 'l',
        EntryKind::Hardlink { .. } => 'h',
        EntryKind::CharDevice(_) => 'c',
        EntryKind::BlockDevice(_) => 'b',
        EntryKind::Fifo => 'p',
        EntryKind::Socket => 's',
    };
    let m = e.mode;
    let bit = |mask: u32, c: char| if m & mask != 0 { c } else { '-' };
    let special = |exec: bool, special: bool, lower: char, upper: char| match (exec, special) {
        (true, true) => lower,
        (false, true) => upper,
        (true, false) => 'x',
        (false, false) => '-',
    };
    format!(
        "{kind}{}{}{}{}{}{}{}{}{}",
        bit(0o400, 'r'),
        bit(0o200, 'w'),
        special(m & 0o100 != 0, m & 0o4000 != 0, 's', 'S'),
        bit(0o040, 'r'),
        bit(0o020, 'w'),
        special(m & 0o010 != 0, m & 0o2000 != 0, 's', 'S'),
        bit(0o004, 'r'),
        bit(0o002, 'w'),
        special(m & 0o001 != 0, m & 0o1000 != 0, 't', 'T'),
    )
}

fn entry_json(e: &Entry) -> serde_json::Value {
    serde_json::json!({
        "path": String::from_utf8_lossy(&e.path),
        "path_bytes": hex::encode(&e.path),
        "kind": format!("{:?}", e.kind).split([' ', '(', '{']).next().unwrap_or("").to_lowercase(),
        "mode": format!("{:o}", e.mode),
        "uid": e.uid, "gid": e.gid, "user": e.user, "group": e.group,
        "size": e.size,
        "mtime": e.mtime.seconds, "mtime_nanos": e.mtime.nanos,
    })
}
