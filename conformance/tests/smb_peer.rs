//! The smbd peer comes up and, to the stock smbclient with the right password, lists the
//! share's files, lists its shares (through the samba-dcerpcd that smbd starts on demand) and
//! serves the share in tar mode (the way BackupPC backs up over SMB); a wrong password is
//! refused.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use hoard_conformance::peers::SmbPeer;

const USER: &str = "hoardsmb";
const PASSWORD: &str = "Sm6Pass!";

/// 300 kB that do not compress: a simple xorshift stream.
fn blob() -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..300_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// A share with a text file and a 300 kB file in a subdirectory, readable by everyone (smbd
/// reads it as the Samba user).
fn build_share(share: &Path) {
    fs::create_dir_all(share.join("sub")).expect("mkdir");
    fs::write(share.join("hello.txt"), b"hello over smb\n").expect("write");
    fs::write(share.join("sub").join("blob.bin"), blob()).expect("write");
    for dir in [share.parent().expect("parent"), share, &share.join("sub")] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

fn smbclient(peer: &SmbPeer, credentials: &str, args: &[&str]) -> Output {
    Command::new("smbclient")
        .arg(format!("//127.0.0.1/{}", peer.share()))
        .args(["-p", &peer.port().to_string(), "-U", credentials])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run smbclient")
}

fn text(output: &Output) -> String {
    format!(
        "{}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn serves_the_share_in_tar_mode_with_the_password_and_refuses_without() {
    let work = tempfile::tempdir().expect("tempdir");
    let share = work.path().join("share");
    build_share(&share);

    let started = Instant::now();
    let peer = SmbPeer::start(&share, USER, PASSWORD).expect("smb peer");
    eprintln!(
        "smbd up on 127.0.0.1:{} (pid {}) in {:?}",
        peer.port(),
        peer.pid(),
        started.elapsed()
    );
    let log = || fs::read_to_string(peer.log()).unwrap_or_default();
    let credentials = format!("{}%{}", peer.user(), peer.password());

    let listing = smbclient(&peer, &credentials, &["-c", "ls"]);
    let listed = text(&listing);
    assert!(listing.status.success(), "{listed}\nlog:\n{}", log());
    assert!(listed.contains("hello.txt"), "{listed}");
    assert!(listed.contains("sub"), "{listed}");

    // Listing the shares goes through samba-dcerpcd, which smbd starts on demand and the
    // peer must stop too.
    let shares = Command::new("smbclient")
        .args([
            "-L",
            "127.0.0.1",
            "-p",
            &peer.port().to_string(),
            "-U",
            &credentials,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run smbclient -L");
    let shares_text = text(&shares);
    assert!(shares.status.success(), "{shares_text}");
    assert!(shares_text.contains(peer.share()), "{shares_text}");

    let archive = work.path().join("share.tar");
    let tar = smbclient(&peer, &credentials, &["-Tc", "-"]);
    assert!(tar.status.success(), "{}\nlog:\n{}", text(&tar), log());
    fs::write(&archive, &tar.stdout).expect("write the tar");
    let members = Command::new("tar")
        .arg("-tf")
        .arg(&archive)
        .output()
        .expect("tar -tf");
    let members = String::from_utf8_lossy(&members.stdout).into_owned();
    for member in ["./hello.txt", "./sub/blob.bin"] {
        assert!(
            members.lines().any(|line| line == member),
            "{member} missing from:\n{members}"
        );
    }
    let extracted = work.path().join("extracted");
    fs::create_dir(&extracted).expect("mkdir");
    let status = Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&extracted)
        .status()
        .expect("tar -xf");
    assert!(status.success());
    assert_eq!(
        fs::read(extracted.join("sub").join("blob.bin")).expect("read"),
        blob()
    );

    let refused = smbclient(&peer, &format!("{}%wrong", peer.user()), &["-c", "ls"]);
    let refused_text = text(&refused);
    assert!(!refused.status.success(), "{refused_text}");
    assert!(
        refused_text.contains("NT_STATUS_LOGON_FAILURE"),
        "{refused_text}"
    );
}
