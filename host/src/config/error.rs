//! What can be wrong with a config, and turning RON's errors into `file:line:col: message`
//! lines a person can act on. Owns [`ConfigError`], [`Problem`] and the one place RON text is
//! parsed ([`parse_ron`]).

use std::fmt;
use std::io;
use std::path::PathBuf;

use serde::de::DeserializeOwned;

/// A place in a config file, both counted from 1 (columns in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// The line.
    pub line: usize,
    /// The column.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Why a config could not be used. File names are relative to the config folder
/// (`hosts/web1.ron`), so a message reads the same on every machine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file or folder could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// RON that does not parse, or does not fit the config's shape: a syntax error, an
    /// unknown key, a duration, size or path that is not one.
    #[error("{}:{position}: {message}", file.display())]
    Parse {
        /// The file.
        file: PathBuf,
        /// Where in it.
        position: Position,
        /// What is wrong.
        message: String,
    },
    /// A setting that parses but cannot be used; `file` is where the setting was written
    /// (a host file, or `hoard.ron` for a default).
    #[error("{}: {problem}", file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        problem: Problem,
    },
    /// There is no host file by that name.
    #[error("no host named `{name}` (there is no hosts/{name}.ron)")]
    UnknownHost {
        /// The name asked for.
        name: String,
    },
    /// A secret's password file could not be read (at use time).
    #[error("secret `{name}`: cannot read {}: {source}", path.display())]
    SecretUnreadable {
        /// The secret's name in `grants.secrets`.
        name: String,
        /// Its `password_file`.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Several errors, in file order.
    #[error("{}", display_list(.0))]
    Several(Vec<ConfigError>),
}

fn display_list(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConfigError {
    /// One error, or [`ConfigError::Several`] when there are more; `None` when there are none.
    pub fn from_list(mut errors: Vec<ConfigError>) -> Option<ConfigError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(ConfigError::Several(errors)),
        }
    }

    /// The single errors this one stands for ([`ConfigError::Several`] flattened).
    pub fn into_list(self) -> Vec<ConfigError> {
        match self {
            ConfigError::Several(list) => {
                list.into_iter().flat_map(ConfigError::into_list).collect()
            }
            other => vec![other],
        }
    }
}

/// A setting that parses but cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// A host file whose name is not a host name.
    #[error(
        "`{name}` is not a valid host name: use letters, digits, `-`, `_` and `.`, starting with a letter or digit"
    )]
    InvalidHostName {
        /// The file name without `.ron`.
        name: String,
    },
    /// No transport plugin named, here or in the defaults.
    #[error(
        "no `transport`: name a transport plugin (e.g. \"tar\") here or in `defaults` in hoard.ron"
    )]
    NoTransport,
    /// `transport: ""`.
    #[error("`transport` is empty: name a transport plugin, e.g. \"tar\"")]
    EmptyTransport,
    /// A setting that must not be empty is.
    #[error("`{setting}` is empty")]
    Empty {
        /// The setting, e.g. `address` or `ssh.user`.
        setting: &'static str,
    },
    /// A host that is not this machine but has no ssh settings.
    #[error(
        "address `{address}` is not this machine, so the host needs `ssh: (...)` (without ssh, programs run on the server itself, which only `localhost` may do)"
    )]
    RemoteWithoutSsh {
        /// The host's address.
        address: String,
    },
    /// A blackout period with hours outside the day or an unknown week day.
    #[error("`blackout_periods`: {reason}")]
    InvalidBlackout {
        /// What is wrong.
        reason: String,
    },
    /// A hook command that is an empty list or has an empty program.
    #[error(
        "`hooks.{hook}` is empty: give a program and its arguments, e.g. [\"/usr/local/bin/notify\", \"$host\"]"
    )]
    EmptyHook {
        /// Which hook.
        hook: &'static str,
    },
    /// `full_keep: []`.
    #[error(
        "`full_keep` is empty: keep at least one full (BackupPC's FullKeepCnt must be >= 1), e.g. [1]"
    )]
    EmptyFullKeep,
    /// A host that is backed up but has no shares.
    #[error(
        "`shares` is empty: nothing to back up (write `backups: \"off\"` for a host kept only for its old backups)"
    )]
    NoShares,
    /// An include or exclude list for a share the host does not have.
    #[error(
        "`{setting}` has a list for `{share}`, which is not one of the host's `shares` (use \"*\" for every share)"
    )]
    UnknownShare {
        /// `includes` or `excludes`.
        setting: &'static str,
        /// The key.
        share: String,
    },
    /// A program granted to a plugin whose place on clients is unknown.
    #[error(
        "`grants.exec` names `{program}`, but `client_paths` in hoard.ron does not say where it is on clients"
    )]
    UnknownProgram {
        /// The program name.
        program: String,
    },
    /// A port that cannot be connected to.
    #[error("`grants.connect` has port 0")]
    PortZero,
}

/// Parses one RON file into `T`, with the config's RON options (`implicit_some`: an optional
/// setting is written as its value, no `Some(...)`). `file` is the name errors carry.
pub(crate) fn parse_ron<T: DeserializeOwned>(
    file: &std::path::Path,
    text: &str,
) -> Result<T, ConfigError> {
    let options =
        ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    options.from_str(text).map_err(|error| {
        let (message, points_at_token) = describe(&error.code);
        let mut position = Position {
            line: error.position.line,
            column: error.position.col,
        };
        if points_at_token {
            position = token_start(text, position);
        }
        ConfigError::Parse {
            file: file.to_path_buf(),
            position,
            message,
        }
    })
}

/// A message for one of RON's errors, and whether RON's position is just after the token the
/// error is about (then the caller moves it back to the token's start).
fn describe(code: &ron::Error) -> (String, bool) {
    use ron::Error as E;
    match code {
        E::Message(message) => (message.clone(), true),
        E::InvalidValueForType { expected, found } => {
            (format!("expected {expected}, found {found}"), true)
        }
        E::NoSuchStructField {
            expected, found, ..
        } => {
            let mut message = format!("unknown key `{found}`");
            if let Some(near) = closest(found, expected) {
                message.push_str(&format!(": did you mean `{near}`?"));
            } else if !expected.is_empty() {
                let keys: Vec<String> = expected.iter().map(|k| format!("`{k}`")).collect();
                message.push_str(&format!("; the keys here are {}", keys.join(", ")));
            }
            (message, true)
        }
        E::NoSuchEnumVariant {
            expected, found, ..
        } => {
            let names: Vec<String> = expected.iter().map(|k| format!("`{k}`")).collect();
            (
                format!(
                    "unknown value `{found}`; expected one of {}",
                    names.join(", ")
                ),
                true,
            )
        }
        E::DuplicateStructField { field, .. } => (format!("key `{field}` is set twice"), true),
        E::MissingStructField { field, .. } => (format!("missing key `{field}`"), false),
        other => {
            let text = other.to_string();
            let mut chars = text.chars();
            let message = match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => text,
            };
            (message, false)
        }
    }
}

/// The candidate within edit distance 2 of `word`, if exactly one is nearest.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = edit_distance(word, candidate);
        if distance <= 2 && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// Moves a position that is just after a token (a string, a number, an identifier) back to the
/// token's first character.
fn token_start(text: &str, at: Position) -> Position {
    let Some(line) = text.split('\n').nth(at.line.saturating_sub(1)) else {
        return at;
    };
    let chars: Vec<char> = line.chars().collect();
    let mut end = at.column.saturating_sub(1).min(chars.len());
    while end > 0 && chars[end - 1].is_whitespace() {
        end -= 1;
    }
    if end == 0 {
        return at;
    }
    let mut start = end - 1;
    if chars[start] == '"' {
        // Back to the opening quote (the config's strings rarely hold escaped quotes).
        while start > 0 {
            start -= 1;
            if chars[start] == '"' && (start == 0 || chars[start - 1] != '\\') {
                break;
            }
        }
    } else {
        while start > 0 && is_token_char(chars[start - 1]) {
            start -= 1;
        }
        if !is_token_char(chars[start]) {
            return at;
        }
    }
    Position {
        line: at.line,
        column: start + 1,
    }
}

fn is_token_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '+')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts() {
        assert_eq!(edit_distance("adress", "address"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
        assert_eq!(closest("shars", &["shares", "ssh"]), Some("shares"));
        assert_eq!(closest("zzzzzz", &["shares", "ssh"]), None);
    }

    #[test]
    fn token_start_moves_back() {
        let text = "(\n  a: \"6x\",\n  b: 42,\n)";
        assert_eq!(
            token_start(
                text,
                Position {
                    line: 2,
                    column: 10
                }
            ),
            Position { line: 2, column: 6 }
        );
        assert_eq!(
            token_start(text, Position { line: 3, column: 8 }),
            Position { line: 3, column: 6 }
        );
    }
}
