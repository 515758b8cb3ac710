//! The outcome of a certification: one line per case (pass, fail, or not applicable with the
//! reason), printed as a table and written as JSON.

use std::io::Write;
use std::path::Path;

use super::manifest::Manifest;
use crate::fixture::{FixtureOptions, Holds};

/// How one case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The plugin did what the case asks.
    Pass,
    /// It did not; the detail says how.
    Fail,
    /// The case does not apply: the plugin does not claim it, or the fixture could not
    /// make it here. Never counted as passed.
    NotApplicable,
}

impl Outcome {
    /// As the table shows it.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::NotApplicable => "n/a",
        }
    }
}

/// One row of the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaseResult {
    /// The case's name (`full`, `feature: xattrs`, `sandbox: refused capability`, ...).
    pub case: String,
    /// How it ended.
    pub outcome: Outcome,
    /// What was seen: figures on a pass, the first differences on a failure, the reason
    /// when not applicable.
    pub detail: String,
    /// How long it took.
    pub seconds: f64,
}

/// Everything a certification found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The plugin as it describes itself.
    pub plugin: Manifest,
    /// Where it came from: a built-in name or a file.
    pub source: String,
    /// The peer it ran against.
    pub peer: String,
    /// The fixture's sizes.
    pub fixture_entries_in_many: usize,
    /// The fixture's large file.
    pub fixture_large_file_bytes: usize,
    /// Which environment-dependent cases the fixture holds.
    pub fixture_holds: Holds,
    /// The cases, in the order they ran.
    pub cases: Vec<CaseResult>,
}

impl Report {
    pub(crate) fn new(
        plugin: Manifest,
        source: String,
        peer: String,
        fixture: FixtureOptions,
        holds: Holds,
    ) -> Self {
        Report {
            plugin,
            source,
            peer,
            fixture_entries_in_many: fixture.many_entries,
            fixture_large_file_bytes: fixture.large_file_bytes,
            fixture_holds: holds,
            cases: Vec::new(),
        }
    }

    /// Whether no case failed.
    pub fn passed(&self) -> bool {
        self.cases.iter().all(|c| c.outcome != Outcome::Fail)
    }

    /// How many cases ended each way: (passed, failed, not applicable).
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |o| self.cases.iter().filter(|c| c.outcome == o).count();
        (
            count(Outcome::Pass),
            count(Outcome::Fail),
            count(Outcome::NotApplicable),
        )
    }

    /// Writes the report as pretty JSON.
    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        let mut value = serde_json::to_value(self).map_err(std::io::Error::other)?;
        value["passed"] = serde_json::Value::Bool(self.passed());
        let mut file = std::fs::File::create(path)?;
        serde_json::to_writer_pretty(&mut file, &value).map_err(std::io::Error::other)?;
        file.write_all(b"\n")
    }

    /// The table: a header line, then case, result and detail, one case per line.
    pub fn table(&self) -> String {
        let width = self
            .cases
            .iter()
            .map(|c| c.case.chars().count())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut out = format!(
            "{} {} against {}\n{:<width$}  {:<6} {:>7}  DETAIL\n",
            self.plugin.name, self.plugin.version, self.peer, "CASE", "RESULT", "SECONDS"
        );
        for case in &self.cases {
            out.push_str(&row(case, width));
            out.push('\n');
        }
        let (pass, fail, na) = self.counts();
        out.push_str(&format!(
            "{pass} passed, {fail} failed, {na} not applicable\n"
        ));
        out
    }
}

/// One line of the table.
pub fn row(case: &CaseResult, width: usize) -> String {
    format!(
        "{:<width$}  {:<6} {:>7.1}  {}",
        case.case,
        case.outcome.label(),
        case.seconds,
        case.detail.replace('\n', " | ")
    )
}
