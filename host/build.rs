//! Builds the plugins workspace (`plugins/`) for `wasm32-wasip2` and embeds the built-in
//! plugins in the `hoard` binary. The test plugins are built too, and their folder is handed
//! to the tests as `HOARD_TEST_PLUGIN_DIR`.
//!
//! The nested cargo uses its own target directory (`<target>/wasm`) so it never waits on the
//! lock of the build that runs this script.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Plugins embedded in the binary: crate name → plugin name.
const BUILT_IN: &[(&str, &str)] = &[
    ("hoard_plugin_example", "example"),
    ("hoard_plugin_tar", "tar"),
    ("hoard_plugin_rsync", "rsync"),
    ("hoard_plugin_notify_email", "notify-email"),
    ("hoard_plugin_notify_webhook", "notify-webhook"),
];

/// Plugins built for the tests only.
const TEST_ONLY: &[&str] = &["hoard_plugin_hostile", "hoard_plugin_probe"];

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("host/ has a parent")
        .to_path_buf();
    let plugins = root.join("plugins");
    for watched in [
        "plugins/Cargo.toml",
        "plugins/sdk",
        "plugins/example",
        "plugins/tar",
        "plugins/rsync",
        "plugins/notify-email",
        "plugins/notify-webhook",
        "plugins/testing",
        "wit",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    let out_dir = PathBuf::from(env("OUT_DIR"));
    let target_root = out_dir
        .ancestors()
        .nth(4)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| root.join("target"));
    let wasm_target = target_root.join("wasm");

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&plugins)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--workspace",
        ])
        .env("CARGO_TARGET_DIR", &wasm_target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo for the plugins: {e}"));
    assert!(
        status.success(),
        "building the plugins for wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`)"
    );

    let built = wasm_target.join("wasm32-wasip2/release");
    let plugin_dir = out_dir.join("plugins");
    std::fs::create_dir_all(&plugin_dir).expect("create OUT_DIR/plugins");
    let mut table = String::from(
        "/// Built-in plugins: (name, component).\npub static PLUGINS: &[(&str, &[u8])] = &[\n",
    );
    for (crate_name, plugin) in BUILT_IN {
        let dest = copy_component(&built, crate_name, &plugin_dir, plugin);
        table.push_str(&format!(
            "    ({plugin:?}, include_bytes!({:?})),\n",
            dest.display().to_string()
        ));
    }
    table.push_str("];\n");
    std::fs::write(out_dir.join("builtin_plugins.rs"), table).expect("write builtin_plugins.rs");

    let test_dir = out_dir.join("test-plugins");
    std::fs::create_dir_all(&test_dir).expect("create OUT_DIR/test-plugins");
    for crate_name in TEST_ONLY {
        let plugin = crate_name.trim_start_matches("hoard_plugin_");
        copy_component(&built, crate_name, &test_dir, plugin);
    }
    println!(
        "cargo:rustc-env=HOARD_TEST_PLUGIN_DIR={}",
        test_dir.display()
    );
    println!(
        "cargo:rustc-env=HOARD_BUILTIN_PLUGIN_DIR={}",
        plugin_dir.display()
    );
}

fn copy_component(built: &Path, crate_name: &str, dir: &Path, plugin: &str) -> PathBuf {
    let source = built.join(format!("{crate_name}.wasm"));
    let dest = dir.join(format!("{plugin}.wasm"));
    std::fs::copy(&source, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", source.display()));
    dest
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}
