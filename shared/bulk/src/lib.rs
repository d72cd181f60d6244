//! Bulk invite from CSV and Excel: the pure part.
//!
//! An uploaded file becomes an iterator of [`Row`]s ([`open`], [`read_csv`],
//! [`read_xlsx`]); a [`Validator`] turns each row into a typed [`Candidate`]
//! (ready for [`peak_domain::users::invite`]) or a list of [`Issue`]s; a
//! [`Report`] collects per-row outcomes and writes them as CSV that a
//! spreadsheet will not execute. No store, no async: the caller wires these to
//! the store, the job runner and the HTTP routes.
//!
//! # Flow
//!
//! ```
//! use peak_bulk::{open_bytes, Limits, Report, Entry, Validator, TEMPLATE_CSV};
//! # let profile = peak_domain::ProfileId::generate();
//! let limits = Limits::default();
//! let rows = open_bytes(TEMPLATE_CSV.as_bytes(), Some("users.csv"), None, &limits).unwrap();
//! let catalogue = peak_domain::catalogue::catalogue();
//! let mut validator = Validator::new(catalogue, [("Standard", profile)], &limits)
//!     // Optional: "already a user" from the store (see `Validator::with_exists_check`).
//!     .with_exists_check(|_email| false);
//! let mut report = Report::default();
//! for row in rows {
//!     match row {
//!         Ok(row) => report.push(Entry::from_check(&validator.check(&row))),
//!         Err(file_error) => { report.fail_file(&file_error); break; }
//!     }
//! }
//! assert_eq!(report.counts.valid, 1);
//! ```
//!
//! # Decisions
//!
//! * **Unknown columns are a file error**, not a warning: a misspelt optional
//!   column ("Extention groups") would otherwise be dropped silently and users
//!   invited without the permissions meant for them. Duplicate columns and
//!   missing required ones (first name, last name, email, role, profile) are
//!   file errors too; one [`FileError::BadHeader`] names them all.
//! * **File errors can come mid-stream for CSV** (too many rows, a row over
//!   the size cap, non-UTF-8 text): run the whole file through the validator
//!   (a dry run) before inviting anyone. An `.xlsx` is read whole by
//!   [`read_xlsx`] (calamine loads a workbook's shared strings up front
//!   anyway), so its file errors all come from that call; its rows are kept
//!   packed in one string, bounded by [`Limits::max_xlsx_uncompressed_bytes`].
//! * **"Already a user"** needs the store: pass a synchronous lookup with
//!   [`Validator::with_exists_check`] (e.g. over a prefetched set of the
//!   tenant's normalized emails), or check [`Candidate`]s afterwards and
//!   record [`Entry::exists`]. Either way it is the `user_exists` issue and
//!   the row is *skipped*, like an address repeated in the file.
//! * Row numbers are what a spreadsheet shows: the header is row 1 (or
//!   wherever the first non-blank row is), blank rows count but are skipped.

mod columns;
mod csv_reader;
mod report;
mod sheets;
mod validate;
mod xlsx_reader;

pub use columns::{Column, Sheet, column_letters};
pub use csv_reader::{CsvRows, read_csv};
pub use report::{Counts, Entry, FileFailure, Outcome, Report, ReportWriter, neutralize};
pub use sheets::{
    ACCOUNT_TEMPLATE_CSV, AccountCandidate, AccountRows, CLEAR, StatusAction, UPDATE_TEMPLATE_CSV,
    UpdateCandidate, UserKey,
};
pub use validate::{Candidate, Issue, Rejected, RowOutcome, Validator, codes};
pub use xlsx_reader::{XlsxRows, read_xlsx};

use serde::Serialize;
use std::io::{Cursor, Read, Seek};

/// The downloadable template: the header the reader expects and one example
/// row (a customer with two extension groups and one account; the profile
/// name is the tenant's own).
pub const TEMPLATE_CSV: &str = "First name,Last name,Email,Role,Profile,Extension groups,Customer accounts\r\n\
Ada,Lovelace,ada.lovelace@example.com,customer,Standard,customer_order_entry;billing_manager,ACME-001\r\n";

/// What an upload may hold. Beyond any of these the file is refused with a
/// [`FileError`] that says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Data rows (not counting the header and blank rows).
    pub max_rows: u32,
    /// Columns of any row, header included.
    pub max_columns: u32,
    /// Characters in one cell; longer cells are a `too_long` row issue.
    pub max_cell_chars: usize,
    /// The uploaded file: CSV bytes as streamed, or the `.xlsx` archive.
    pub max_file_bytes: u64,
    /// Sum of the uncompressed sizes of an `.xlsx` archive's parts; also the
    /// most text kept from its first worksheet.
    pub max_xlsx_uncompressed_bytes: u64,
    /// Parts (zip entries) in an `.xlsx` archive.
    pub max_xlsx_entries: usize,
    /// Uncompressed to compressed size of any part over 1 MiB.
    pub max_xlsx_compression_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_rows: 100_000,
            max_columns: 32,
            max_cell_chars: 1_000,
            max_file_bytes: 64 << 20,
            max_xlsx_uncompressed_bytes: 64 << 20,
            max_xlsx_entries: 1_000,
            max_xlsx_compression_ratio: 100,
        }
    }
}

impl Limits {
    /// The most bytes one CSV record may take: every column at its cell cap
    /// in 4-byte characters, quoted, plus a line break.
    pub fn max_csv_row_bytes(&self) -> u64 {
        u64::from(self.max_columns).saturating_mul(
            (self.max_cell_chars as u64)
                .saturating_mul(4)
                .saturating_add(3),
        ) + 2
    }
}

/// One data row of the file, by column. Values are as in the file
/// (untrimmed); an absent column reads as "".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Row {
    /// As a spreadsheet numbers it: the header is row 1.
    pub row: u32,
    values: [String; columns::COLUMN_COUNT],
    /// 0-based position of the first non-empty value under no header (an
    /// empty header cell, or past the header's last column).
    pub stray_column: Option<u32>,
}

impl Row {
    pub fn new(row: u32) -> Self {
        Self {
            row,
            ..Self::default()
        }
    }

    /// Builder form of [`Row::set`].
    pub fn with(mut self, column: Column, value: impl Into<String>) -> Self {
        self.set(column, value);
        self
    }

    pub fn set(&mut self, column: Column, value: impl Into<String>) {
        self.values[column.index()] = value.into();
    }

    pub fn get(&self, column: Column) -> &str {
        &self.values[column.index()]
    }

    /// Every value blank (and nothing stray): such rows are skipped.
    pub fn is_blank(&self) -> bool {
        self.stray_column.is_none() && self.values.iter().all(|v| v.trim().is_empty())
    }
}

/// Why a whole file is refused. The text is for the person who uploaded it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("{0}: upload a .csv or .xlsx file")]
    Unsupported(String),
    #[error(
        "this is an old-style .xls workbook or a password-protected one: save it as \
         \"Excel Workbook (.xlsx)\" or \"CSV UTF-8\" without a password and upload that"
    )]
    LegacyExcel,
    #[error("the file is UTF-16 text: save it as \"CSV UTF-8 (Comma delimited)\" and upload that")]
    Utf16,
    #[error(
        "row {row} is not UTF-8 text: save the file as \"CSV UTF-8 (Comma delimited)\" and upload that"
    )]
    NotUtf8 { row: u32 },
    #[error("the file does not look like CSV text")]
    Binary,
    #[error("the file has no header row")]
    NoHeader,
    #[error("{}", header_message(*.sheet, .missing, .unknown, .duplicate))]
    BadHeader {
        /// The layout the file was read as.
        sheet: Sheet,
        /// Required columns not found, by [`Column::name`].
        missing: Vec<&'static str>,
        /// Header cells that name no column, as written.
        unknown: Vec<String>,
        /// Header cells naming a column seen before, as written.
        duplicate: Vec<String>,
    },
    #[error("the file has more than {max} rows of users: split it into smaller files")]
    TooManyRows { max: u32 },
    #[error("row {row} has more than {max} columns")]
    TooManyColumns { row: u32, max: u32 },
    #[error("row {row} is longer than {max_bytes} bytes (is a quote left open?)")]
    RowTooLong { row: u32, max_bytes: u64 },
    #[error("the file is larger than {} MiB", .max_bytes >> 20)]
    TooLarge { max_bytes: u64 },
    #[error("the file is not a valid .xlsx workbook ({0})")]
    InvalidXlsx(String),
    /// An `.xlsx` archive beyond the size, part or compression limits.
    #[error("the workbook is refused: {0}")]
    UnsafeArchive(String),
    #[error("the workbook has no worksheet")]
    NoWorksheet,
    #[error("the file could not be read ({0})")]
    Io(String),
}

impl FileError {
    /// A stable code for APIs and logs.
    pub fn code(&self) -> &'static str {
        match self {
            FileError::Unsupported(_) => "unsupported_file_type",
            FileError::LegacyExcel => "legacy_excel",
            FileError::Utf16 => "utf16_text",
            FileError::NotUtf8 { .. } => "not_utf8",
            FileError::Binary => "not_text",
            FileError::NoHeader => "no_header",
            FileError::BadHeader { .. } => "bad_header",
            FileError::TooManyRows { .. } => "too_many_rows",
            FileError::TooManyColumns { .. } => "too_many_columns",
            FileError::RowTooLong { .. } => "row_too_long",
            FileError::TooLarge { .. } => "file_too_large",
            FileError::InvalidXlsx(_) => "invalid_xlsx",
            FileError::UnsafeArchive(_) => "unsafe_archive",
            FileError::NoWorksheet => "no_worksheet",
            FileError::Io(_) => "unreadable",
        }
    }
}

fn header_message(
    sheet: Sheet,
    missing: &[&str],
    unknown: &[String],
    duplicate: &[String],
) -> String {
    let quoted = |v: &[String]| {
        v.iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing column(s): {}", missing.join(", ")));
    }
    if !unknown.is_empty() {
        parts.push(format!("unknown column(s): {}", quoted(unknown)));
    }
    if !duplicate.is_empty() {
        parts.push(format!("repeated column(s): {}", quoted(duplicate)));
    }
    let expected: Vec<&str> = sheet.columns().iter().map(|c| c.label()).collect();
    let optional = match sheet {
        Sheet::Invite => "the last two may be left out",
        Sheet::Update => "email or id, and only the columns to change",
        Sheet::AccountImport => "parent and status may be left out",
    };
    format!(
        "the header row is not usable: {}. The columns are: {} ({optional})",
        parts.join("; "),
        expected.join(", ")
    )
}

/// The two formats an upload may be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Csv,
    Xlsx,
}

const OOXML_SHEET: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

impl Format {
    /// Decides from the first bytes (`head`, 8 are enough), the file name and
    /// the content type. Content wins: a zip (`PK\x03\x04`) is read as
    /// `.xlsx` whatever its name; an OLE2 file (old `.xls`, or a
    /// password-protected workbook) is refused. Otherwise a name ending in
    /// `.csv`, `.txt` or `.tsv` — or no name, and a text or Excel content type
    /// (browsers send `application/vnd.ms-excel` for `.csv`) — is CSV.
    pub fn detect(
        file_name: Option<&str>,
        content_type: Option<&str>,
        head: &[u8],
    ) -> Result<Format, FileError> {
        if head.starts_with(b"PK\x03\x04") {
            return Ok(Format::Xlsx);
        }
        if head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
            return Err(FileError::LegacyExcel);
        }
        if head.starts_with(b"%PDF") || head.starts_with(&[0x1F, 0x8B]) {
            return Err(FileError::Unsupported("this is not a spreadsheet".into()));
        }
        let ext = file_name
            .and_then(|n| n.rsplit_once('.'))
            .map(|(_, e)| e.trim().to_ascii_lowercase());
        let mime = content_type
            .map(|c| {
                c.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .filter(|c| !c.is_empty());
        let looks_xlsx = || FileError::InvalidXlsx("it is not a zip archive".into());
        match ext.as_deref() {
            Some("csv" | "txt" | "tsv") => Ok(Format::Csv),
            Some("xlsx" | "xlsm") => Err(looks_xlsx()),
            Some("xls") => Err(FileError::LegacyExcel),
            Some(other) if file_name.is_some_and(|n| !n.ends_with('.')) => Err(
                FileError::Unsupported(format!("\".{}\" files are not supported", shorten(other))),
            ),
            _ => match mime.as_deref() {
                Some(OOXML_SHEET) => Err(looks_xlsx()),
                None
                | Some(
                    "text/csv"
                    | "text/plain"
                    | "text/tab-separated-values"
                    | "application/csv"
                    | "application/vnd.ms-excel"
                    | "application/octet-stream",
                ) => Ok(Format::Csv),
                Some(other) => Err(FileError::Unsupported(format!(
                    "files of type {} are not supported",
                    shorten(other)
                ))),
            },
        }
    }
}

fn shorten(s: &str) -> String {
    columns::shorten(s, 40)
}

/// The rows of either format.
pub enum Rows<R: Read> {
    /// Boxed: the CSV parser's state is large.
    Csv(Box<CsvRows<R>>),
    Xlsx(XlsxRows),
}

impl<R: Read> Rows<R> {
    pub fn format(&self) -> Format {
        match self {
            Rows::Csv(_) => Format::Csv,
            Rows::Xlsx(_) => Format::Xlsx,
        }
    }
}

impl<R: Read> Iterator for Rows<R> {
    type Item = Result<Row, FileError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Rows::Csv(r) => r.next(),
            Rows::Xlsx(r) => r.next(),
        }
    }
}

/// Detects the format ([`Format::detect`]) and opens a bulk-invite file:
/// CSV streams from `input`; an `.xlsx` is checked and read whole.
pub fn open<R: Read + Seek>(
    input: R,
    file_name: Option<&str>,
    content_type: Option<&str>,
    limits: &Limits,
) -> Result<Rows<R>, FileError> {
    open_sheet(Sheet::Invite, input, file_name, content_type, limits)
}

/// [`open`] for the file of any job kind.
pub fn open_sheet<R: Read + Seek>(
    sheet: Sheet,
    mut input: R,
    file_name: Option<&str>,
    content_type: Option<&str>,
    limits: &Limits,
) -> Result<Rows<R>, FileError> {
    let mut head = [0u8; 8];
    let mut got = 0;
    while got < head.len() {
        match input.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FileError::Io(e.to_string())),
        }
    }
    input.rewind().map_err(|e| FileError::Io(e.to_string()))?;
    match Format::detect(file_name, content_type, &head[..got])? {
        Format::Csv => {
            csv_reader::read_csv_sheet(sheet, input, limits).map(|r| Rows::Csv(Box::new(r)))
        }
        Format::Xlsx => xlsx_reader::read_xlsx_sheet(sheet, input, limits).map(Rows::Xlsx),
    }
}

/// [`open`] over bytes in memory.
pub fn open_bytes<'b>(
    bytes: &'b [u8],
    file_name: Option<&str>,
    content_type: Option<&str>,
    limits: &Limits,
) -> Result<Rows<Cursor<&'b [u8]>>, FileError> {
    open(Cursor::new(bytes), file_name, content_type, limits)
}

/// [`open_sheet`] over bytes in memory.
pub fn open_bytes_sheet<'b>(
    sheet: Sheet,
    bytes: &'b [u8],
    file_name: Option<&str>,
    content_type: Option<&str>,
    limits: &Limits,
) -> Result<Rows<Cursor<&'b [u8]>>, FileError> {
    open_sheet(sheet, Cursor::new(bytes), file_name, content_type, limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_comes_from_content_first_then_name_then_type() {
        let zip = b"PK\x03\x04rest";
        assert_eq!(
            Format::detect(Some("a.csv"), None, zip).unwrap(),
            Format::Xlsx
        );
        assert_eq!(
            Format::detect(Some("users.CSV"), None, b"a,b").unwrap(),
            Format::Csv
        );
        assert_eq!(
            Format::detect(None, Some("application/vnd.ms-excel"), b"a,b").unwrap(),
            Format::Csv
        );
        assert_eq!(
            Format::detect(None, Some("text/csv; charset=utf-8"), b"a").unwrap(),
            Format::Csv
        );
        assert_eq!(Format::detect(None, None, b"").unwrap(), Format::Csv);
        assert_eq!(
            Format::detect(Some("a.xls"), None, &[0xD0, 0xCF, 0x11, 0xE0]).unwrap_err(),
            FileError::LegacyExcel
        );
        assert_eq!(
            Format::detect(Some("a.xlsx"), None, b"first,last")
                .unwrap_err()
                .code(),
            "invalid_xlsx"
        );
        assert_eq!(
            Format::detect(Some("a.pdf"), None, b"hello")
                .unwrap_err()
                .code(),
            "unsupported_file_type"
        );
        assert_eq!(
            Format::detect(None, Some("image/png"), b"x")
                .unwrap_err()
                .code(),
            "unsupported_file_type"
        );
    }

    #[test]
    fn limits_bound_a_csv_row() {
        let l = Limits::default();
        assert_eq!(l.max_csv_row_bytes(), 32 * 4003 + 2);
    }

    #[test]
    fn rows_read_absent_columns_as_empty() {
        let r = Row::new(2).with(Column::Email, "a@b.co");
        assert_eq!(r.get(Column::Email), "a@b.co");
        assert_eq!(r.get(Column::Role), "");
        assert!(!r.is_blank());
        assert!(Row::new(3).with(Column::Role, "  ").is_blank());
    }
}
