//! What a plugin says about itself (`hoard plugin inspect --json`), and the aspects of a tree
//! its metadata flags promise to carry.

use std::collections::BTreeSet;

use crate::fixture::Aspect;

/// A transport plugin's self-description, as the kit uses it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Manifest {
    /// Its name (the `transport` a host names).
    pub name: String,
    /// Its version.
    pub version: String,
    /// `transport` or `notifier`.
    pub kind: String,
    /// Capabilities as `hoard plugin inspect` prints them: `exec(tar)`, `connect(873)`, ...
    pub capabilities: Vec<String>,
    /// `incremental`, `restore`, `delta`.
    pub features: Vec<String>,
    /// Metadata flags: `owner-ids`, `permissions`, ...
    pub metadata: Vec<String>,
    /// BLAKE3 of the component.
    pub blake3: String,
}

impl Manifest {
    /// Reads the JSON `hoard plugin inspect --json` prints.
    pub fn from_json(value: &serde_json::Value) -> Result<Manifest, String> {
        let text = |key: &str| {
            value[key]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("plugin description has no `{key}`"))
        };
        let list = |key: &str| -> Vec<String> {
            value[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(Manifest {
            name: text("name")?,
            version: text("version")?,
            kind: text("kind")?,
            capabilities: list("capabilities"),
            features: list("features"),
            metadata: list("metadata"),
            blake3: text("blake3").unwrap_or_default(),
        })
    }

    /// Whether it claims a feature (`incremental`, `restore`, `delta`).
    pub fn has_feature(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f == feature)
    }

    /// Programs it asks to run on clients.
    pub fn exec_programs(&self) -> Vec<&str> {
        self.capabilities
            .iter()
            .filter_map(|c| c.strip_prefix("exec(")?.strip_suffix(')'))
            .collect()
    }

    /// Whether it asks to open TCP connections to clients.
    pub fn connects(&self) -> bool {
        self.capabilities.iter().any(|c| c.starts_with("connect("))
    }

    /// Names of the secrets it asks the host to hold.
    pub fn secrets(&self) -> Vec<&str> {
        self.capabilities
            .iter()
            .filter_map(|c| c.strip_prefix("secret(")?.strip_suffix(')'))
            .collect()
    }

    /// The aspects its metadata flags promise ([`Aspect::Core`] always).
    pub fn aspects(&self) -> BTreeSet<Aspect> {
        let mut aspects = BTreeSet::from([Aspect::Core]);
        for flag in &self.metadata {
            let aspect = match flag.as_str() {
                "owner-ids" => Aspect::Owners,
                "permissions" => Aspect::Permissions,
                "mtime-nanoseconds" => Aspect::MtimeNanoseconds,
                "symlinks" => Aspect::Symlinks,
                "hardlinks" => Aspect::Hardlinks,
                "devices" => Aspect::Devices,
                "specials" => Aspect::Specials,
                "xattrs" => Aspect::Xattrs,
                "sparse" => Aspect::Sparse,
                _ => continue,
            };
            aspects.insert(aspect);
        }
        aspects
    }
}
