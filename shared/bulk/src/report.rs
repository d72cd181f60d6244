//! What happened to each row, and the downloadable CSV of it.

use crate::FileError;
use crate::validate::{Candidate, Issue, RowOutcome};
use serde::Serialize;
use std::borrow::Cow;
use std::io::{self, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Passed every check (dry run).
    Valid,
    Invited,
    /// Changed (a bulk update) or created/replaced (an account import).
    Applied,
    /// Already a user, or an address repeated in the file.
    Skipped,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Valid => "valid",
            Outcome::Invited => "invited",
            Outcome::Applied => "applied",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
        }
    }
}

/// One row's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub row: u32,
    /// As written in the file (for rows that failed) or as parsed.
    pub email: String,
    pub outcome: Outcome,
    /// Why it was skipped or failed; empty otherwise.
    pub issues: Vec<Issue>,
}

impl Entry {
    /// A dry run's outcome: valid, skipped (only duplicate / existing-user
    /// issues) or failed.
    pub fn from_check(outcome: &RowOutcome) -> Self {
        match outcome {
            RowOutcome::Valid(c) => Self::of(c, Outcome::Valid, Vec::new()),
            RowOutcome::Invalid(r) => Self {
                row: r.row,
                email: r.email.clone(),
                outcome: if r.is_skip() {
                    Outcome::Skipped
                } else {
                    Outcome::Failed
                },
                issues: r.issues.clone(),
            },
        }
    }

    /// A row of another sheet: `key` is its user (email or id) or account
    /// number, in the report's second column.
    pub fn keyed(row: u32, key: impl Into<String>, outcome: Outcome, issues: Vec<Issue>) -> Self {
        Self {
            row,
            email: key.into(),
            outcome,
            issues,
        }
    }

    /// A row the file's checks refused: skipped or failed.
    pub fn rejected(r: &crate::Rejected) -> Self {
        Self::from_check(&RowOutcome::Invalid(r.clone()))
    }

    pub fn invited(c: &Candidate) -> Self {
        Self::of(c, Outcome::Invited, Vec::new())
    }

    /// The store said the address is taken (e.g. the invite's conflict).
    pub fn exists(c: &Candidate) -> Self {
        Self::of(c, Outcome::Skipped, vec![Issue::user_exists(c.row)])
    }

    /// The invite itself was refused (permission, store error, …).
    pub fn failed(c: &Candidate, code: &'static str, reason: impl Into<String>) -> Self {
        Self::of(
            c,
            Outcome::Failed,
            vec![Issue::new(c.row, None, code, reason)],
        )
    }

    fn of(c: &Candidate, outcome: Outcome, issues: Vec<Issue>) -> Self {
        Self {
            row: c.row,
            email: c.email.as_str().to_owned(),
            outcome,
            issues,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Rows seen (blank rows are not rows).
    pub total: u32,
    pub valid: u32,
    pub invited: u32,
    /// Rows changed or upserted (bulk updates, account imports).
    pub applied: u32,
    pub skipped: u32,
    pub failed: u32,
}

impl Counts {
    pub fn add(&mut self, outcome: Outcome) {
        self.total += 1;
        *match outcome {
            Outcome::Valid => &mut self.valid,
            Outcome::Invited => &mut self.invited,
            Outcome::Applied => &mut self.applied,
            Outcome::Skipped => &mut self.skipped,
            Outcome::Failed => &mut self.failed,
        } += 1;
    }
}

/// A file-level error as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileFailure {
    pub code: &'static str,
    pub reason: String,
}

impl From<&FileError> for FileFailure {
    fn from(e: &FileError) -> Self {
        Self {
            code: e.code(),
            reason: e.to_string(),
        }
    }
}

/// Every row's outcome, in memory. For very large files prefer
/// [`ReportWriter`], which writes lines as they come and keeps only counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub counts: Counts,
    pub entries: Vec<Entry>,
    /// Why the file stopped being read, if it did.
    pub file_error: Option<FileFailure>,
}

impl Report {
    pub fn push(&mut self, entry: Entry) {
        self.counts.add(entry.outcome);
        self.entries.push(entry);
    }

    pub fn fail_file(&mut self, error: &FileError) {
        self.file_error = Some(error.into());
    }

    /// `row,email,outcome,column,code,reason` (the job's report has the
    /// same columns): the file error first (if any),
    /// then one line per issue (one line for a row without issues).
    pub fn write_csv<W: Write>(&self, out: W) -> io::Result<()> {
        let mut w = ReportWriter::new(out)?;
        if let Some(f) = &self.file_error {
            w.write_file_error(f)?;
        }
        for e in &self.entries {
            w.write(e)?;
        }
        w.finish().map(|_| ())
    }
}

/// Writes report lines as entries come, counting them.
pub struct ReportWriter<W: Write> {
    csv: csv::Writer<W>,
    counts: Counts,
}

impl<W: Write> ReportWriter<W> {
    pub const HEADER: [&'static str; 6] = ["row", "email", "outcome", "column", "code", "reason"];

    /// Writes the header line.
    pub fn new(out: W) -> io::Result<Self> {
        let mut csv = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(out);
        csv.write_record(Self::HEADER)?;
        Ok(Self {
            csv,
            counts: Counts::default(),
        })
    }

    pub fn write(&mut self, e: &Entry) -> io::Result<()> {
        self.counts.add(e.outcome);
        let row = e.row.to_string();
        if e.issues.is_empty() {
            return self.line(&row, &e.email, e.outcome.as_str(), "", "", "");
        }
        for i in &e.issues {
            self.line(
                &row,
                &e.email,
                e.outcome.as_str(),
                i.column.as_deref().unwrap_or(""),
                i.code,
                &i.reason,
            )?;
        }
        Ok(())
    }

    pub fn write_file_error(&mut self, f: &FileFailure) -> io::Result<()> {
        self.line("", "", Outcome::Failed.as_str(), "", f.code, &f.reason)
    }

    fn line(
        &mut self,
        row: &str,
        email: &str,
        outcome: &str,
        column: &str,
        code: &str,
        reason: &str,
    ) -> io::Result<()> {
        let fields = [row, email, outcome, column, code, reason].map(neutralize);
        self.csv.write_record(fields.iter().map(|f| f.as_bytes()))?;
        Ok(())
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Flushes and hands back the counts and the writer.
    pub fn finish(self) -> io::Result<(Counts, W)> {
        let counts = self.counts;
        let out = self
            .csv
            .into_inner()
            .map_err(|e| io::Error::other(e.error().to_string()))?;
        Ok((counts, out))
    }
}

/// A value a spreadsheet would run as a formula (starting with `=`, `+`,
/// `-`, `@`, tab or CR) gets a leading `'`, which spreadsheets show as text.
pub fn neutralize(value: &str) -> Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Column;
    use crate::validate::{Rejected, codes};

    fn text(r: &Report) -> String {
        let mut out = Vec::new();
        r.write_csv(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn neutralizes_values_a_spreadsheet_would_run() {
        for (v, want) in [
            ("=1+1", "'=1+1"),
            ("+1", "'+1"),
            ("-2", "'-2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("ada@example.com", "ada@example.com"),
            ("", ""),
            ("a=b", "a=b"),
        ] {
            assert_eq!(neutralize(v), want, "{v:?}");
        }
    }

    #[test]
    fn writes_one_line_per_issue_with_escaped_values_and_counts() {
        let mut r = Report::default();
        r.push(Entry::from_check(&RowOutcome::Invalid(Rejected {
            row: 3,
            email: "=HYPERLINK(\"http://x\",\"y\")".into(),
            issues: vec![
                Issue::new(3, Some(Column::Email), codes::INVALID_EMAIL, "is bad"),
                Issue::new(3, Some(Column::Role), codes::UNKNOWN_ROLE, "-no such role"),
            ],
        })));
        r.push(Entry::from_check(&RowOutcome::Invalid(Rejected {
            row: 4,
            email: "a@example.com".into(),
            issues: vec![Issue::user_exists(4)],
        })));
        r.fail_file(&FileError::TooManyRows { max: 2 });
        assert_eq!(
            r.counts,
            Counts {
                total: 2,
                failed: 1,
                skipped: 1,
                ..Counts::default()
            }
        );
        let csv = text(&r);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "row,email,outcome,column,code,reason");
        assert!(lines[1].starts_with(",,failed,,too_many_rows,the file has more than 2 rows"));
        assert_eq!(
            lines[2],
            "3,\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",failed,email,invalid_email,is bad"
        );
        assert_eq!(
            lines[3],
            "3,\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",failed,role,unknown_role,'-no such role"
        );
        assert_eq!(
            lines[4],
            "4,a@example.com,skipped,email,user_exists,a user with this email address already exists"
        );
        assert_eq!(lines.len(), 5);
        // No field of any line starts with a formula character.
        let mut rdr = csv::ReaderBuilder::new().from_reader(csv.as_bytes());
        for rec in rdr.records() {
            for f in rec.unwrap().iter() {
                assert!(!f.starts_with(['=', '+', '-', '@', '\t', '\r']), "{f:?}");
            }
        }
    }

    #[test]
    fn the_streaming_writer_counts_what_it_writes() {
        let mut w = ReportWriter::new(Vec::new()).unwrap();
        w.write_file_error(&FileFailure {
            code: "x",
            reason: "+bad".into(),
        })
        .unwrap();
        let (counts, out) = w.finish().unwrap();
        assert_eq!(counts, Counts::default());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "row,email,outcome,column,code,reason\r\n,,failed,,x,'+bad\r\n"
        );
    }
}
