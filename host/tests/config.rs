//! The config layer from the outside: the example folders load, settings resolve host over
//! defaults over built-ins, and every kind of mistake is reported with its file (and
//! line:column where RON knows it).

use std::path::{Path, PathBuf};
use std::time::Duration;

use hoard::config::{BackupMode, Config, ConfigError, builtin};
use hoard::plugin::bindings::Capability;

/// A config folder in a temporary directory, from `(relative path, text)` pairs.
fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

/// Every error `Config::load` reports for a folder, one string each.
fn errors(files: &[(&str, &str)]) -> Vec<String> {
    let dir = folder(files);
    match Config::load(dir.path()) {
        Ok(_) => Vec::new(),
        Err(error) => error.into_list().iter().map(ToString::to_string).collect(),
    }
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config-examples")
}

const LOCAL_HOST: &str = r#"(transport: "tar", address: "localhost", shares: ["/srv"])"#;

#[test]
fn every_example_folder_loads() {
    let mut seen = 0;
    for entry in std::fs::read_dir(examples()).expect("config-examples") {
        let dir = entry.expect("entry").path();
        let config = Config::load(&dir).unwrap_or_else(|e| panic!("{}:\n{e}", dir.display()));
        assert!(config.hosts().count() > 0, "{}", dir.display());
        seen += 1;
    }
    assert!(seen >= 3, "quickstart, office, all-options");
}

#[test]
fn quickstart_is_the_embedded_config() {
    let embedded = Config::embedded(PathBuf::from("/tmp/pool")).expect("embedded");
    let folder = Config::load(&examples().join("quickstart")).expect("quickstart");
    assert_eq!(embedded.pool(), Path::new("/tmp/pool"));
    assert_eq!(embedded.plugin_dir(), None);
    assert_eq!(embedded.hosts().collect::<Vec<_>>(), ["localhost"]);
    let host = embedded.host("localhost").expect("localhost");
    assert_eq!(host, folder.host("localhost").expect("localhost"));
    assert_eq!(host.address, "localhost");
    assert_eq!(host.transport, "tar");
    assert_eq!(host.ssh, None);
    assert!(host.is_local());
    assert_eq!(host.shares, [PathBuf::from("/usr/share/doc")]);
    assert_eq!(host.grants, None);
    assert_eq!(host.backups, BackupMode::Scheduled);
}

#[test]
fn office_example_resolves() {
    let config = Config::load(&examples().join("office")).expect("office");
    assert_eq!(
        config.hosts().collect::<Vec<_>>(),
        ["files", "laptop-anna", "nas", "web"]
    );
    let nas = config.host("nas").expect("nas");
    assert_eq!(nas.transport, "rsync");
    assert_eq!(nas.plugin_settings["daemon"], "true");
    let web = config.host("web").expect("web");
    let ssh = web.ssh.as_ref().expect("ssh");
    assert_eq!((ssh.user.as_str(), ssh.port), ("root", 2222));
    assert_eq!(ssh.private_key, Path::new("/etc/hoard/id_ed25519"));
    assert_eq!(ssh.address, "web.office.example");
    assert_eq!(web.transport, "tar");
    assert_eq!(
        web.excludes_for(Path::new("/etc")),
        ["*.tmp", "*/.cache", "*/.local/share/Trash"]
    );
    let files = config.host("files").expect("files");
    assert_eq!(files.transport, "rsync");
    assert_eq!(
        files.excludes_for(Path::new("/srv/shared")),
        ["*.tmp", "*/.cache", "*/.local/share/Trash", "/scratch"]
    );
    let laptop = config.host("laptop-anna").expect("laptop");
    assert_eq!(laptop.backups, BackupMode::Manual);
    assert_eq!(
        laptop.includes_for(Path::new("/home/anna")),
        ["Documents", "Pictures", "Projects"]
    );
    assert_eq!(config.client_paths()["tar"], Path::new("/usr/bin/tar"));
    assert_eq!(
        config.client_paths()["cat"],
        Path::new("/bin/cat"),
        "built-in kept"
    );
    assert_eq!(config.cache_dir(), Path::new("/srv/hoard/cache"));
}

#[test]
fn host_over_defaults_over_builtins() {
    let dir = folder(&[
        (
            "hoard.ron",
            r#"(
                defaults: (
                    transport: "rsync",
                    ssh: (user: "backup", key: "/keys/id", connect_timeout: "5s"),
                    shares: ["/home"],
                    client_timeout: "2h",
                    plugin_settings: { "a": "1" },
                    owner: "ops",
                ),
            )"#,
        ),
        ("hosts/plain.ron", "()"),
        (
            "hosts/custom.ron",
            r#"(
                transport: "tar",
                ssh: (port: 2200),
                shares: ["/etc"],
                client_timeout: "90s",
                plugin_settings: { "b": "2" },
                owner: None,
                full_period: "1d",
            )"#,
        ),
        ("hosts/localhost.ron", "(ssh: None)"),
    ]);
    let config = Config::load(dir.path()).expect("load");

    let plain = config.host("plain").expect("plain");
    assert_eq!(plain.address, "plain", "address defaults to the name");
    assert_eq!(plain.transport, "rsync");
    let ssh = plain.ssh.as_ref().expect("ssh from defaults");
    assert_eq!(ssh.user, "backup");
    assert_eq!(ssh.port, builtin::SSH_PORT);
    assert_eq!(ssh.private_key, Path::new("/keys/id"));
    assert_eq!(ssh.known_hosts, dir.path().join("known_hosts"));
    assert_eq!(ssh.connect_timeout, Duration::from_secs(5));
    assert!(!ssh.accept_new_host_keys);
    assert_eq!(plain.shares, [PathBuf::from("/home")]);
    assert_eq!(plain.client_timeout, Duration::from_secs(7_200));
    assert_eq!(plain.owner.as_deref(), Some("ops"));
    assert_eq!(
        plain.full_period,
        Duration::from_secs(602_208),
        "built-in 6.97d"
    );
    assert_eq!(
        plain.incr_period,
        Duration::from_secs(83_808),
        "built-in 0.97d"
    );
    assert!(plain.one_file_system);

    let custom = config.host("custom").expect("custom");
    assert_eq!(custom.transport, "tar");
    let ssh = custom.ssh.as_ref().expect("ssh merged");
    assert_eq!(
        (ssh.user.as_str(), ssh.port),
        ("backup", 2200),
        "ssh keys merge one by one"
    );
    assert_eq!(custom.shares, [PathBuf::from("/etc")]);
    assert_eq!(custom.client_timeout, Duration::from_secs(90));
    assert_eq!(
        custom.plugin_settings.keys().collect::<Vec<_>>(),
        ["b"],
        "maps replace, not merge"
    );
    assert_eq!(custom.owner, None, "`owner: None` clears the default");
    assert_eq!(custom.full_period, Duration::from_secs(86_400));

    let local = config.host("localhost").expect("localhost");
    assert_eq!(local.ssh, None, "`ssh: None` overrides the default ssh");

    assert!(matches!(
        config.host("nope"),
        Err(ConfigError::UnknownHost { .. })
    ));
    assert_eq!(config.compression_level(), 3);
    assert_eq!(config.plugin_memory().bytes(), 512 << 20);
    assert_eq!(config.plugin_deadline(), Duration::from_secs(86_400));
    assert_eq!(config.plugin_dir(), Some(dir.path().join("plugins")));
}

#[test]
fn syntax_error_has_its_position() {
    assert_eq!(
        errors(&[
            ("hoard.ron", "()"),
            (
                "hosts/web1.ron",
                "(\n  transport: \"tar\"\n  shares: [],\n)"
            )
        ]),
        ["hosts/web1.ron:3:3: expected comma"]
    );
}

#[test]
fn bad_duration_points_at_the_value() {
    assert_eq!(
        errors(&[
            ("hoard.ron", "()"),
            (
                "hosts/web1.ron",
                "(\n  transport: \"tar\",\n  full_period: \"6x\",\n)"
            ),
        ]),
        [
            r#"hosts/web1.ron:3:16: expected a duration like "6.97d", "20h" or "90s", found "6x"; units are s, m, h, d and w"#
        ]
    );
    assert_eq!(
        errors(&[("hoard.ron", "(\n  defaults: (client_timeout: 72000),\n)")]),
        [
            r#"hoard.ron:2:30: expected a duration like "6.97d", "20h" or "90s", found 72000; write it as a string with a unit, e.g. "72000s""#
        ]
    );
}

#[test]
fn bad_size_points_at_the_value() {
    assert_eq!(
        errors(&[("hoard.ron", "(\n  plugin_memory: \"4G\",\n)")]),
        [
            r#"hoard.ron:2:18: expected a size like "4GiB", "512MiB" or a number of bytes, found "4G"; write "GiB" (powers of 1024) or "GB" (powers of 1000)"#
        ]
    );
}

#[test]
fn unknown_key_suggests_the_nearest() {
    assert_eq!(
        errors(&[
            ("hoard.ron", "()"),
            (
                "hosts/web1.ron",
                "(\n  transport: \"tar\",\n  adress: \"x\",\n)"
            )
        ]),
        ["hosts/web1.ron:3:3: unknown key `adress`: did you mean `address`?"]
    );
    let list = errors(&[("hoard.ron", "(\n  defaults: (ssh: (zzz: 1)),\n)")]);
    assert_eq!(list.len(), 1);
    assert!(
        list[0].starts_with("hoard.ron:2:20: unknown key `zzz`; the keys here are `user`, `port`"),
        "{}",
        list[0]
    );
}

#[test]
fn compression_level_out_of_range() {
    assert_eq!(
        errors(&[("hoard.ron", "(compression_level: 22)")]),
        ["hoard.ron:1:21: expected a compression level from 1 to 19, found 22"]
    );
    assert_eq!(
        errors(&[("hoard.ron", "(compression_level: 0)")]),
        ["hoard.ron:1:21: expected a compression level from 1 to 19, found 0"]
    );
}

#[test]
fn relative_paths_are_refused() {
    assert_eq!(
        errors(&[
            ("hoard.ron", "()"),
            ("hosts/web1.ron", "(\n  shares: [\"/etc\", \"home\"],\n)")
        ]),
        [r#"hosts/web1.ron:2:20: expected an absolute path (starting with `/`), found "home""#]
    );
    assert_eq!(
        errors(&[("hoard.ron", "(defaults: (ssh: (key: \"id_ed25519\")))")]),
        [r#"hoard.ron:1:24: expected an absolute path (starting with `/`), found "id_ed25519""#]
    );
}

#[test]
fn remote_host_needs_ssh() {
    assert_eq!(
        errors(&[
            ("hoard.ron", "()"),
            (
                "hosts/web1.ron",
                r#"(transport: "tar", address: "10.0.0.5", shares: ["/etc"])"#
            ),
        ]),
        [
            "hosts/web1.ron: address `10.0.0.5` is not this machine, so the host needs `ssh: (...)` (without ssh, programs run on the server itself, which only `localhost` may do)"
        ]
    );
    // The default address is the name, which is not local either.
    assert_eq!(
        errors(&[
            ("hoard.ron", "()"),
            ("hosts/web1.ron", r#"(transport: "tar", shares: ["/etc"])"#)
        ])
        .len(),
        1
    );
}

#[test]
fn host_file_name_must_be_a_host_name() {
    assert_eq!(
        errors(&[
            ("hoard.ron", "()"),
            ("hosts/web 1.ron", LOCAL_HOST),
            ("hosts/-x.ron", LOCAL_HOST)
        ]),
        [
            "hosts/-x.ron: `-x` is not a valid host name: use letters, digits, `-`, `_` and `.`, starting with a letter or digit",
            "hosts/web 1.ron: `web 1` is not a valid host name: use letters, digits, `-`, `_` and `.`, starting with a letter or digit",
        ]
    );
    // Other files in hosts/ are not hosts.
    assert!(
        errors(&[
            ("hoard.ron", "()"),
            ("hosts/README", "x"),
            ("hosts/.web1.ron.swp", "x")
        ])
        .is_empty()
    );
}

#[test]
fn transport_must_be_named() {
    assert_eq!(
        errors(&[
            ("hoard.ron", "()"),
            (
                "hosts/localhost.ron",
                r#"(transport: " ", shares: ["/srv"])"#
            ),
        ]),
        [r#"hosts/localhost.ron: `transport` is empty: name a transport plugin, e.g. "tar""#]
    );
    // An empty default is blamed on hoard.ron, where it is written.
    assert_eq!(
        errors(&[
            ("hoard.ron", r#"(defaults: (transport: ""))"#),
            ("hosts/localhost.ron", r#"(shares: ["/srv"])"#)
        ]),
        [r#"hoard.ron: `transport` is empty: name a transport plugin, e.g. "tar""#]
    );
    assert_eq!(
        errors(&[
            ("hoard.ron", "()"),
            ("hosts/localhost.ron", r#"(shares: ["/srv"])"#)
        ]),
        [
            r#"hosts/localhost.ron: no `transport`: name a transport plugin (e.g. "tar") here or in `defaults` in hoard.ron"#
        ]
    );
}

#[test]
fn filters_and_grants_are_cross_checked() {
    assert_eq!(
        errors(&[
            ("hoard.ron", "()"),
            (
                "hosts/localhost.ron",
                r#"(transport: "tar", shares: ["/srv"], excludes: { "/sr": ["x"] }, grants: (exec: ["7z"]))"#
            ),
        ]),
        [
            "hosts/localhost.ron: `excludes` has a list for `/sr`, which is not one of the host's `shares` (use \"*\" for every share)",
            "hosts/localhost.ron: `grants.exec` names `7z`, but `client_paths` in hoard.ron does not say where it is on clients",
        ]
    );
    assert_eq!(
        errors(&[
            ("hoard.ron", "()"),
            ("hosts/localhost.ron", r#"(transport: "tar")"#)
        ]),
        [
            r#"hosts/localhost.ron: `shares` is empty: nothing to back up (write `backups: "off"` for a host kept only for its old backups)"#
        ]
    );
    assert!(
        errors(&[
            ("hoard.ron", "()"),
            (
                "hosts/localhost.ron",
                r#"(transport: "tar", backups: "off")"#
            )
        ])
        .is_empty()
    );
}

#[test]
fn every_error_is_reported_not_only_the_first() {
    let list = errors(&[
        ("hoard.ron", "(compression_level: 99)"),
        ("hosts/a.ron", "(address: 1)"),
        ("hosts/b.ron", "(backups: \"sometimes\")"),
        ("hosts/c.ron", LOCAL_HOST),
    ]);
    assert_eq!(
        list,
        [
            "hoard.ron:1:21: expected a compression level from 1 to 19, found 99",
            "hosts/a.ron:1:11: expected string",
            r#"hosts/b.ron:1:11: expected "scheduled", "manual" or "off", found "sometimes""#,
        ]
    );
    // `check` goes on: the good host is still resolved once hoard.ron parses.
    let dir = folder(&[
        ("hoard.ron", "()"),
        ("hosts/a.ron", "(address: 1)"),
        ("hosts/c.ron", LOCAL_HOST),
    ]);
    let check = Config::check(dir.path());
    assert_eq!(check.hosts.len(), 1);
    assert_eq!(check.errors.len(), 1);
}

#[test]
fn missing_global_file_is_an_error() {
    let list = errors(&[("hosts/localhost.ron", LOCAL_HOST)]);
    assert_eq!(list.len(), 1);
    assert!(list[0].contains("hoard.ron"), "{}", list[0]);
}

#[test]
fn passwords_stay_out_of_debug_output() {
    let dir = folder(&[("smb.pw", "hunter2-secret\n")]);
    let pw = dir.path().join("smb.pw");
    let host = format!(
        r#"(transport: "smb", shares: ["/c"], grants: (secrets: {{ "smb": (user: "backup", password_file: "{}") }}))"#,
        pw.display()
    );
    let config_dir = folder(&[("hoard.ron", "()"), ("hosts/localhost.ron", &host)]);
    let config = Config::load(config_dir.path()).expect("load");
    let resolved = config.host("localhost").expect("host");
    assert!(!format!("{config:?}{resolved:?}").contains("hunter2"));

    let grant = config
        .capability_grant(&resolved, &[Capability::Secret("smb".into())])
        .expect("grant");
    let secret = &grant.secrets["smb"];
    assert_eq!(
        secret.password, "hunter2-secret",
        "read at use time, newline dropped"
    );
    assert_eq!(secret.user, "backup");
    assert!(!format!("{grant:?}").contains("hunter2"));

    // A secret the manifest does not ask for is neither read nor granted.
    std::fs::remove_file(&pw).expect("rm");
    let grant = config.capability_grant(&resolved, &[]).expect("grant");
    assert!(grant.secrets.is_empty());
    let error = config
        .capability_grant(&resolved, &[Capability::Secret("smb".into())])
        .expect_err("file gone");
    assert!(
        error.to_string().starts_with("secret `smb`: cannot read "),
        "{error}"
    );
}

#[test]
fn default_grant_is_the_manifest_within_client_paths() {
    let config = Config::embedded(PathBuf::from("/tmp/pool")).expect("embedded");
    let host = config.host("localhost").expect("localhost");
    let grant = config
        .capability_grant(
            &host,
            &[
                Capability::Exec("tar".into()),
                Capability::Exec("7z".into()),
                Capability::ServerTool("smbclient".into()),
                Capability::Secret("smb".into()),
            ],
        )
        .expect("grant");
    assert_eq!(grant.exec.keys().collect::<Vec<_>>(), ["tar"]);
    assert_eq!(grant.exec["tar"], Path::new("/bin/tar"));
    assert!(grant.server_tools.is_empty() && grant.secrets.is_empty());
}
