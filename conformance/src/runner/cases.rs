//! The matrix: full, incremental after mutation, second full, restores into an empty tree and
//! over a changed one, one check per metadata aspect the plugin claims, and the sandbox
//! checks. Each case adds one row to the report; a case that cannot run says why.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use super::hoard::Hoard;
use super::manifest::Manifest;
use super::report::{CaseResult, Outcome, Report};
use super::setup::Bench;
use crate::fixture::{
    Aspect, Description, EXTRA_FILE, compare, describe_tree, disturb_tree, mutate_tree,
};

/// How many differences a failing case lists.
const SHOWN_DIFFERENCES: usize = 4;

/// The state the cases pass along.
pub(crate) struct Matrix<'a> {
    pub hoard: &'a Hoard,
    pub bench: &'a Bench,
    pub manifest: &'a Manifest,
    pub report: &'a mut Report,
    pub progress: &'a mut dyn FnMut(&CaseResult),
    /// The source as it was at the full, and that backup restored by the host.
    full: Option<(Description, Description)>,
    /// The source after the mutation, and the latest backup of it restored by the host.
    mutated: Option<(Description, Description)>,
}

type CaseOutcome = Result<(Outcome, String), String>;

impl<'a> Matrix<'a> {
    pub fn new(
        hoard: &'a Hoard,
        bench: &'a Bench,
        manifest: &'a Manifest,
        report: &'a mut Report,
        progress: &'a mut dyn FnMut(&CaseResult),
    ) -> Self {
        Matrix {
            hoard,
            bench,
            manifest,
            report,
            progress,
            full: None,
            mutated: None,
        }
    }

    /// Runs every case in order.
    pub fn run(&mut self) {
        self.case("full", Self::full);
        self.case("incremental after mutation", Self::incremental);
        self.case("second full", Self::second_full);
        for aspect in Aspect::ALL.into_iter().filter(|a| *a != Aspect::Core) {
            self.case(&format!("feature: {}", aspect.name()), |m| {
                m.feature(aspect)
            });
        }
        self.case("restore into an empty tree", Self::restore_empty);
        self.case("restore over a changed tree", Self::restore_over);
        self.case("sandbox: refused capability", Self::refused_capability);
        self.case("pool check (fsck)", Self::fsck);
    }

    fn case(&mut self, name: &str, run: impl FnOnce(&mut Self) -> CaseOutcome) {
        let started = Instant::now();
        let (outcome, detail) = run(self).unwrap_or_else(|detail| (Outcome::Fail, detail));
        let result = CaseResult {
            case: name.to_owned(),
            outcome,
            detail,
            seconds: started.elapsed().as_secs_f64(),
        };
        (self.progress)(&result);
        self.report.cases.push(result);
    }

    fn source(&self) -> std::path::PathBuf {
        self.bench.local("tree")
    }

    /// Runs a backup of `client` at `level` and checks the summary: the level asked, a
    /// complete backup. Returns the summary.
    fn backup(&self, level: &str) -> Result<serde_json::Value, String> {
        let flag = format!("--{level}");
        let ran = self.hoard.must(&["backup", "client", &flag, "--json"])?;
        let summary = ran.json()?;
        let want = if level == "full" {
            "full"
        } else {
            "incremental"
        };
        if summary["level"] != want {
            return Err(format!("asked for {want}, got {}", summary["level"]));
        }
        if summary["partial"] != false {
            return Err(format!(
                "backup is partial ({} errors): {}",
                summary["errors"],
                ran.tail()
            ));
        }
        Ok(summary)
    }

    /// Restores backup `number` of the share with the host's own restore (no plugin) and
    /// describes what came out.
    fn restored_by_host(&self, number: u64) -> Result<Description, String> {
        let target = self.bench.work.join(format!("check-{number}"));
        let share = self.bench.share("tree");
        self.hoard.must(&[
            "restore",
            &format!("client:{number}"),
            &share,
            "--to",
            &target.display().to_string(),
        ])?;
        describe_tree(&target).map_err(|e| format!("describe {}: {e}", target.display()))
    }

    fn core() -> BTreeSet<Aspect> {
        BTreeSet::from([Aspect::Core])
    }

    fn full(&mut self) -> CaseOutcome {
        let expected = describe(&self.source())?;
        let summary = self.backup("full")?;
        let restored = self.restored_by_host(number(&summary)?)?;
        let verdict = verdict(&expected, &restored, &Self::core(), &summary);
        self.full = Some((expected, restored));
        Ok(verdict)
    }

    fn incremental(&mut self) -> CaseOutcome {
        mutate_tree(&self.source()).map_err(|e| format!("mutate the fixture: {e}"))?;
        let expected = describe(&self.source())?;
        if !self.manifest.has_feature("incremental") {
            self.mutated = Some((expected, Description::new()));
            return Ok(not_claimed("incremental"));
        }
        let summary = self.backup("incr")?;
        let restored = self.restored_by_host(number(&summary)?)?;
        let verdict = verdict(&expected, &restored, &Self::core(), &summary);
        self.mutated = Some((expected, restored));
        Ok(verdict)
    }

    fn second_full(&mut self) -> CaseOutcome {
        let expected = describe(&self.source())?;
        let summary = self.backup("full")?;
        let restored = self.restored_by_host(number(&summary)?)?;
        let verdict = verdict(&expected, &restored, &Self::core(), &summary);
        self.mutated = Some((expected, restored));
        Ok(verdict)
    }

    /// One aspect, checked on the full and on the latest backup.
    fn feature(&mut self, aspect: Aspect) -> CaseOutcome {
        if !self.manifest.aspects().contains(&aspect) {
            return Ok(not_claimed(aspect.name()));
        }
        if let Some(reason) = self.bench.holds.missing(aspect) {
            return Ok((Outcome::NotApplicable, reason.to_owned()));
        }
        let only = BTreeSet::from([aspect]);
        let mut checked = 0;
        for (expected, restored) in [&self.full, &self.mutated].into_iter().flatten() {
            if restored.is_empty() {
                continue;
            }
            let diff = compare(expected, restored, &only);
            if !diff.is_empty() {
                return Err(listing(&diff));
            }
            checked += 1;
        }
        if checked == 0 {
            return Err("no backup to check (the full failed)".into());
        }
        Ok((Outcome::Pass, format!("{checked} backups, every entry")))
    }

    /// Restores the latest backup through the plugin into `served/NAME`.
    fn restore_through_plugin(&self, name: &str) -> Result<(), String> {
        let share = self.bench.share("tree");
        let target = format!("client:{}", self.bench.share(name));
        self.hoard
            .must(&["restore", "client", &share, "--to-host", &target])
            .map(|_| ())
    }

    fn restore_empty(&mut self) -> CaseOutcome {
        if !self.manifest.has_feature("restore") {
            return Ok(not_claimed("restore"));
        }
        let Some((expected, _)) = &self.mutated else {
            return Err("no backup to restore".into());
        };
        let target = self.bench.local("restore-empty");
        std::fs::create_dir_all(&target).map_err(|e| format!("make the target: {e}"))?;
        self.restore_through_plugin("restore-empty")?;
        let got = describe(&target)?;
        let diff = compare(expected, &got, &self.manifest.aspects());
        if diff.is_empty() {
            Ok((
                Outcome::Pass,
                format!("{} entries, every claimed aspect", got.len()),
            ))
        } else {
            Err(listing(&diff))
        }
    }

    fn restore_over(&mut self) -> CaseOutcome {
        if !self.manifest.has_feature("restore") {
            return Ok(not_claimed("restore"));
        }
        let Some((expected, _)) = &self.mutated else {
            return Err("no backup to restore".into());
        };
        let target = self.bench.local("restore-empty");
        if !target.join("plain.txt").exists() {
            return Err("the restore into an empty tree left nothing to change".into());
        }
        disturb_tree(&target).map_err(|e| format!("change the restored tree: {e}"))?;
        self.restore_through_plugin("restore-empty")?;
        let mut got = describe(&target)?;
        if got.remove(EXTRA_FILE.as_bytes()).is_none() {
            return Err(format!(
                "{EXTRA_FILE}, which the backup does not have, was deleted"
            ));
        }
        let diff = compare(expected, &got, &self.manifest.aspects());
        if diff.is_empty() {
            Ok((
                Outcome::Pass,
                "changes undone, a file not in the backup kept".into(),
            ))
        } else {
            Err(listing(&diff))
        }
    }

    /// A host granted nothing: the backup must fail cleanly, naming the refused capability,
    /// and leave no complete backup.
    fn refused_capability(&mut self) -> CaseOutcome {
        if self.manifest.exec_programs().is_empty() && !self.manifest.connects() {
            return Ok((
                Outcome::NotApplicable,
                "the plugin asks for no exec or connect".into(),
            ));
        }
        let ran = self
            .hoard
            .run(&["backup", "denied", "--full", "--json"])
            .map_err(|e| e.to_string())?;
        let text = format!("{}\n{}", ran.stdout, ran.stderr);
        if ran.success {
            return Err("a backup with nothing granted succeeded".into());
        }
        if !text.contains("not granted") {
            return Err(format!(
                "failed without naming a refused capability: {}",
                ran.tail()
            ));
        }
        let list = self.hoard.must(&["list", "denied", "--json"])?.json()?;
        let complete = list
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|b| b["status"].as_str().is_some_and(|s| s.starts_with("ok")))
                    .count()
            })
            .unwrap_or(0);
        if complete > 0 {
            return Err(format!("{complete} complete backups despite the refusal"));
        }
        Ok((
            Outcome::Pass,
            "failed cleanly: capability not granted".into(),
        ))
    }

    fn fsck(&mut self) -> CaseOutcome {
        let ran = self.hoard.must(&["fsck"])?;
        Ok((Outcome::Pass, ran.tail()))
    }
}

fn describe(path: &Path) -> Result<Description, String> {
    describe_tree(path).map_err(|e| format!("describe {}: {e}", path.display()))
}

fn number(summary: &serde_json::Value) -> Result<u64, String> {
    summary["number"]
        .as_u64()
        .ok_or_else(|| format!("no backup number in {summary}"))
}

fn not_claimed(what: &str) -> (Outcome, String) {
    (
        Outcome::NotApplicable,
        format!("the plugin does not claim {what}"),
    )
}

fn listing(diff: &[String]) -> String {
    let mut text = diff
        .iter()
        .take(SHOWN_DIFFERENCES)
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");
    if diff.len() > SHOWN_DIFFERENCES {
        text.push_str(&format!("\n... {} differences in all", diff.len()));
    }
    text
}

fn verdict(
    expected: &Description,
    restored: &Description,
    aspects: &BTreeSet<Aspect>,
    summary: &serde_json::Value,
) -> (Outcome, String) {
    let diff = compare(expected, restored, aspects);
    if diff.is_empty() {
        (
            Outcome::Pass,
            format!(
                "{} entries; {} files, {} bytes, {} new, {:.1} s",
                restored.len(),
                summary["files"],
                summary["bytes"],
                summary["new_bytes"],
                summary["seconds"].as_f64().unwrap_or(0.0)
            ),
        )
    } else {
        (Outcome::Fail, listing(&diff))
    }
}
