//! `.xlsx` uploads: the first worksheet, values only.
//!
//! A workbook is an untrusted zip archive. Before calamine opens it, every
//! part's declared sizes are checked against the limits (total uncompressed
//! size, part count, compression ratio), and then every part is inflated once
//! into a counter that stops one byte past its declared size, so a part that
//! lies about its size is refused too. Formula cells are read as the value
//! Excel saved with them (calamine never evaluates, and never hands out the
//! formula text); a formula saved without a value reads as empty.

use crate::columns::{COLUMN_COUNT, Header, Sheet as Layout};
use crate::{Column, FileError, Limits, Row};
use calamine::{DataRef, Reader, Xlsx};
use std::io::{self, Read, Seek, SeekFrom};

/// Parts this large or larger must not be compressed beyond the ratio limit.
const RATIO_CHECK_FROM: u64 = 1 << 20;

/// Data rows of an `.xlsx` file, read ahead by [`read_xlsx`]; never yields
/// an `Err` (file errors all come from [`read_xlsx`]).
#[derive(Debug)]
pub struct XlsxRows {
    /// Every kept value, back to back.
    text: String,
    rows: std::vec::IntoIter<Packed>,
}

#[derive(Debug)]
struct Packed {
    row: u32,
    /// Start of this row's values in `text`, then the end of each column's.
    start: usize,
    ends: [usize; COLUMN_COUNT],
    stray_column: Option<u32>,
}

impl Iterator for XlsxRows {
    type Item = Result<Row, FileError>;

    fn next(&mut self) -> Option<Self::Item> {
        let p = self.rows.next()?;
        let mut row = Row::new(p.row);
        row.stray_column = p.stray_column;
        let mut from = p.start;
        for (column, end) in Column::EVERY.into_iter().zip(p.ends) {
            row.set(column, self.text.get(from..end).unwrap_or_default());
            from = end;
        }
        Some(Ok(row))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.rows.size_hint()
    }
}

/// Checks the archive, then reads the first worksheet: its first non-blank
/// row is the header, later non-blank rows are data.
pub fn read_xlsx<R: Read + Seek>(input: R, limits: &Limits) -> Result<XlsxRows, FileError> {
    read_xlsx_sheet(Layout::Invite, input, limits)
}

/// [`read_xlsx`] for the file of any job kind.
pub fn read_xlsx_sheet<R: Read + Seek>(
    layout: Layout,
    mut input: R,
    limits: &Limits,
) -> Result<XlsxRows, FileError> {
    let io_err = |e: io::Error| FileError::Io(e.to_string());
    let len = input.seek(SeekFrom::End(0)).map_err(io_err)?;
    if len > limits.max_file_bytes {
        return Err(FileError::TooLarge {
            max_bytes: limits.max_file_bytes,
        });
    }
    input.rewind().map_err(io_err)?;
    check_archive(&mut input, limits)?;
    input.rewind().map_err(io_err)?;

    let mut book: Xlsx<R> = Xlsx::new(input).map_err(|e| invalid(&e))?;
    let first = book
        .sheet_names()
        .into_iter()
        .next()
        .ok_or(FileError::NoWorksheet)?;
    let mut cells = book
        .worksheet_cells_reader(&first)
        .map_err(|e| invalid(&e))?;
    let mut sheet = Sheet::new(layout, limits);
    while let Some(cell) = cells.next_cell().map_err(|e| invalid(&e))? {
        let (r, c) = cell.get_position();
        let Some(text) = cell_text(cell.get_value(), limits.max_cell_chars) else {
            continue;
        };
        if c >= sheet.limits.max_columns {
            return Err(FileError::TooManyColumns {
                row: r.saturating_add(1),
                max: sheet.limits.max_columns,
            });
        }
        if sheet.current_row != Some(r) {
            sheet.flush()?;
            sheet.current_row = Some(r);
        }
        sheet.cells.push((c, text));
    }
    sheet.flush()?;
    if sheet.header.is_none() {
        return Err(FileError::NoHeader);
    }
    Ok(XlsxRows {
        text: sheet.text,
        rows: sheet.rows.into_iter(),
    })
}

fn invalid(e: &calamine::XlsxError) -> FileError {
    FileError::InvalidXlsx(crate::columns::shorten(&e.to_string(), 200))
}

/// The limits on the archive itself, checked before calamine reads it.
fn check_archive<R: Read + Seek>(input: &mut R, limits: &Limits) -> Result<(), FileError> {
    let zip_err = |e: zip::result::ZipError| match e {
        zip::result::ZipError::UnsupportedArchive(why) if why.contains("assword") => {
            FileError::LegacyExcel
        }
        other => FileError::InvalidXlsx(crate::columns::shorten(&other.to_string(), 200)),
    };
    let unsafe_archive = |why: String| Err(FileError::UnsafeArchive(why));
    let mut zip = zip::ZipArchive::new(input).map_err(zip_err)?;
    if zip.len() > limits.max_xlsx_entries {
        return unsafe_archive(format!(
            "it has {} parts; at most {} are allowed",
            zip.len(),
            limits.max_xlsx_entries
        ));
    }
    let mib = limits.max_xlsx_uncompressed_bytes >> 20;
    let mut declared_total: u64 = 0;
    for i in 0..zip.len() {
        let part = zip.by_index_raw(i).map_err(zip_err)?;
        let (size, packed) = (part.size(), part.compressed_size());
        declared_total = declared_total.saturating_add(size);
        if declared_total > limits.max_xlsx_uncompressed_bytes {
            return unsafe_archive(format!("it unpacks to more than {mib} MiB"));
        }
        if size >= RATIO_CHECK_FROM
            && size > packed.saturating_mul(limits.max_xlsx_compression_ratio)
        {
            return unsafe_archive(format!(
                "a part is compressed more than {}:1",
                limits.max_xlsx_compression_ratio
            ));
        }
    }
    // The declared sizes are the archive's word: check them by inflating
    // each part once (this also checks every part's CRC).
    let mut actual_total: u64 = 0;
    for i in 0..zip.len() {
        let mut part = zip.by_index(i).map_err(zip_err)?;
        if part.is_dir() {
            continue;
        }
        let declared = part.size();
        let mut scan = PartScan::default();
        let n = io::copy(&mut (&mut part).take(declared.saturating_add(1)), &mut scan)
            .map_err(|e| FileError::InvalidXlsx(crate::columns::shorten(&e.to_string(), 200)))?;
        io::Write::flush(&mut scan).map_err(|e| FileError::Io(e.to_string()))?;
        if n > declared {
            return unsafe_archive("a part is larger than the archive says".into());
        }
        // calamine reserves room for the `uniqueCount` a shared-string table
        // claims; a truthful table holds at least 4 bytes per string.
        if scan.max_count > n / 4 + 16 {
            return unsafe_archive(
                "its shared-string table claims more strings than it holds".into(),
            );
        }
        if let Some(bad) = scan.bad_ref {
            return Err(FileError::InvalidXlsx(format!(
                "\"{}\" is not a cell reference",
                crate::columns::shorten(&bad, 20)
            )));
        }
        actual_total += n;
        if actual_total > limits.max_xlsx_uncompressed_bytes {
            return unsafe_archive(format!("it unpacks to more than {mib} MiB"));
        }
    }
    Ok(())
}

/// Looks at the attributes calamine trusts, as a part streams past:
/// `uniqueCount` (it reserves room for that many shared strings) and the
/// cell references `r` / `ref` (it does unchecked arithmetic on them). A
/// small state machine over bytes, so no value escapes by being split across
/// writes or padded with spaces.
#[derive(Default)]
struct PartScan {
    state: ScanState,
    /// Local name of the attribute being read (only short names matter).
    name: Vec<u8>,
    value: Vec<u8>,
    /// The name had the `xmlns:` prefix (a namespace declaration).
    xmlns: bool,
    prev_boundary: bool,
    max_count: u64,
    bad_ref: Option<String>,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum ScanState {
    #[default]
    Text,
    Name,
    AfterName,
    AfterEq,
    Value(u8),
    Skip(u8),
}

/// The attributes worth reading, by local name.
fn watched(name: &[u8]) -> bool {
    matches!(name, b"uniqueCount" | b"r" | b"ref")
}

impl PartScan {
    const MAX_NAME: usize = 16;
    const MAX_VALUE: usize = 64;

    fn byte(&mut self, b: u8) {
        use ScanState::*;
        let name_char = b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
        match self.state {
            Text => {
                if self.prev_boundary && name_char {
                    self.xmlns = false;
                    self.name.clear();
                    self.name.push(b);
                    self.state = Name;
                }
            }
            Name => {
                if name_char {
                    if self.name.len() <= Self::MAX_NAME {
                        self.name.push(b);
                    }
                } else if b == b':' {
                    self.xmlns = self.name == b"xmlns";
                    self.name.clear();
                } else if b.is_ascii_whitespace() {
                    self.state = AfterName;
                } else if b == b'=' {
                    self.state = AfterEq;
                } else {
                    self.state = Text;
                }
            }
            AfterName => {
                if b == b'=' {
                    self.state = AfterEq;
                } else if !b.is_ascii_whitespace() {
                    self.state = Text;
                    self.prev_boundary = true;
                    return self.byte(b);
                }
            }
            AfterEq => {
                if b == b'"' || b == b'\'' {
                    self.value.clear();
                    self.state = if watched(&self.name) && !self.xmlns {
                        Value(b)
                    } else {
                        Skip(b)
                    };
                } else if !b.is_ascii_whitespace() {
                    self.state = Text;
                }
            }
            Value(q) => {
                if b == q || self.value.len() >= Self::MAX_VALUE {
                    self.judge();
                    self.state = if b == q { Text } else { Skip(q) };
                } else {
                    self.value.push(b);
                }
            }
            Skip(q) => {
                if b == q {
                    self.state = Text;
                }
            }
        }
        self.prev_boundary = b.is_ascii_whitespace() || b == b'<' || b == b':';
    }

    fn judge(&mut self) {
        let v = &self.value;
        if self.name == b"uniqueCount" {
            let mut n: u64 = 0;
            for &d in v.iter().take_while(|d| d.is_ascii_digit()) {
                n = n.saturating_mul(10).saturating_add(u64::from(d - b'0'));
            }
            self.max_count = self.max_count.max(n);
            return;
        }
        // Letters then digits, as calamine reads them: at most 6 letters
        // and 9 digits keep its u32 arithmetic from overflowing; a range
        // must not run backwards (it subtracts start from end).
        let mut cells = Vec::new();
        let mut ok = true;
        for part in v.split(|&b| b == b':') {
            let letters = part.iter().take_while(|b| b.is_ascii_alphabetic()).count();
            let digits = part[letters..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let class = |b: &u8| (b.is_ascii_alphabetic(), b.is_ascii_digit());
            for run in part.chunk_by(|a, b| class(a) == class(b)) {
                match class(&run[0]) {
                    (true, _) if run.len() > 6 => ok = false,
                    (_, true) if run.len() > 9 => ok = false,
                    _ => {}
                }
            }
            if letters > 0 && digits > 0 && letters + digits == part.len() && ok {
                let col = part[..letters].iter().fold(0u64, |c, l| {
                    c * 26 + u64::from(l.to_ascii_uppercase() - b'A') + 1
                });
                let row = part[letters..]
                    .iter()
                    .fold(0u64, |r, d| r * 10 + u64::from(d - b'0'));
                cells.push(Some((row, col)));
            } else {
                cells.push(None);
            }
        }
        if let [Some((r1, c1)), Some((r2, c2))] = cells[..]
            && (r2 < r1 || c2 < c1)
        {
            ok = false;
        }
        if !ok && self.bad_ref.is_none() {
            self.bad_ref = Some(String::from_utf8_lossy(v).into_owned());
        }
    }
}

impl io::Write for PartScan {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut i = 0;
        while i < buf.len() {
            // Fast paths: most bytes are text or values nobody watches.
            let skip_to = match self.state {
                ScanState::Skip(q) => buf[i..].iter().position(|&b| b == q),
                ScanState::Text if !self.prev_boundary => buf[i..]
                    .iter()
                    .position(|&b| b.is_ascii_whitespace() || b == b'<' || b == b':'),
                _ => Some(0),
            };
            match skip_to {
                Some(n) => {
                    i += n;
                    self.byte(buf[i]);
                    i += 1;
                }
                None => break,
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if let ScanState::Value(_) = self.state {
            self.judge();
            self.state = ScanState::Text;
        }
        Ok(())
    }
}

/// A cell's value as text, or `None` when empty. Numbers print as a
/// spreadsheet shows them without formatting (`12345`, not `12345.0`).
/// Text past the cell cap is cut to one character over it, so the validator
/// still reports it too long without the sheet's whole text being kept.
fn cell_text(value: &DataRef<'_>, max_chars: usize) -> Option<String> {
    let mut text = match value {
        DataRef::Empty => return None,
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::SharedString(s) => {
            if s.len() > max_chars.saturating_mul(4) {
                s.chars().take(max_chars.saturating_add(1)).collect()
            } else {
                (*s).to_owned()
            }
        }
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => number(*f),
        DataRef::DateTime(d) => number(d.as_f64()),
        DataRef::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
        DataRef::Error(e) => e.to_string(),
    };
    if text.trim().is_empty() {
        return None;
    }
    if let Some((cut, _)) = text.char_indices().nth(max_chars.saturating_add(1)) {
        text.truncate(cut);
    }
    Some(text)
}

fn number(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// Gathers cells into rows.
struct Sheet {
    layout: Layout,
    limits: Limits,
    header: Option<Header>,
    current_row: Option<u32>,
    /// The current row's non-empty cells: (0-based column, text).
    cells: Vec<(u32, String)>,
    text: String,
    rows: Vec<Packed>,
    text_budget: usize,
}

impl Sheet {
    fn new(layout: Layout, limits: &Limits) -> Self {
        let mut limits = *limits;
        limits.max_columns = limits.max_columns.clamp(1, 16_384);
        Self {
            layout,
            limits,
            header: None,
            current_row: None,
            cells: Vec::new(),
            text: String::new(),
            rows: Vec::new(),
            text_budget: usize::try_from(limits.max_xlsx_uncompressed_bytes).unwrap_or(usize::MAX),
        }
    }

    fn flush(&mut self) -> Result<(), FileError> {
        if self.cells.is_empty() {
            return Ok(());
        }
        let number = self.current_row.unwrap_or(0).saturating_add(1);
        let cells = std::mem::take(&mut self.cells);
        let Some(header) = &self.header else {
            let width = cells
                .iter()
                .map(|(c, _)| *c as usize + 1)
                .max()
                .unwrap_or(0);
            let mut by_position = vec![""; width];
            for (c, text) in &cells {
                by_position[*c as usize] = text;
            }
            self.header = Some(Header::parse(self.layout, by_position)?);
            return Ok(());
        };
        if self.rows.len() >= self.limits.max_rows as usize {
            return Err(FileError::TooManyRows {
                max: self.limits.max_rows,
            });
        }
        let mut values: [&str; COLUMN_COUNT] = [""; COLUMN_COUNT];
        let mut stray_column = None;
        for (c, text) in &cells {
            match header.slot(*c as usize) {
                Some(column) => values[column.index()] = text,
                None => {
                    stray_column = Some(stray_column.map_or(*c, |s: u32| s.min(*c)));
                }
            }
        }
        let size: usize = values.iter().map(|v| v.len()).sum();
        if self.text.len().saturating_add(size) > self.text_budget {
            return Err(FileError::UnsafeArchive(format!(
                "its first worksheet holds more than {} MiB of text (at row {number})",
                self.text_budget >> 20
            )));
        }
        let start = self.text.len();
        let mut ends = [0usize; COLUMN_COUNT];
        for (end, v) in ends.iter_mut().zip(values) {
            self.text.push_str(v);
            *end = self.text.len();
        }
        self.rows.push(Packed {
            row: number,
            start,
            ends,
            stray_column,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn scan(chunks: &[&[u8]]) -> PartScan {
        let mut s = PartScan::default();
        for c in chunks {
            s.write_all(c).unwrap();
        }
        s.flush().unwrap();
        s
    }

    #[test]
    fn the_part_scan_sees_values_split_across_writes() {
        let text = br#"<sst uniqueCount = "123456"><c r="A1"/><c
            r
            =
            'AAAAAAAAA1'/></sst>"#;
        let whole = scan(&[text]);
        assert_eq!(whole.max_count, 123_456);
        assert_eq!(whole.bad_ref.as_deref(), Some("AAAAAAAAA1"));
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        let split = scan(&bytes);
        assert_eq!(split.max_count, 123_456);
        assert_eq!(split.bad_ref.as_deref(), Some("AAAAAAAAA1"));
    }

    #[test]
    fn the_part_scan_leaves_ordinary_parts_alone() {
        let s = scan(&[
            br#"<?xml version="1.0"?><worksheet xmlns:r="http://x/relationships"><dimension ref="A1:XFD1048576"/><row r="1048576" spans="1:3"><c r="XFD1048576" s="1" t="s"><v>0</v></c></row><a:srgbClr r="100000"/><f t="shared" ref="C2:C10" si="0">A1</f><t>r="not an attribute"</t></worksheet>"#,
        ]);
        assert_eq!(s.bad_ref, None);
        assert_eq!(s.max_count, 0);
    }

    #[test]
    fn numbers_print_as_a_spreadsheet_shows_them() {
        assert_eq!(number(12345.0), "12345");
        assert_eq!(number(-3.0), "-3");
        assert_eq!(number(1.5), "1.5");
        assert_eq!(number(1e20), "100000000000000000000");
        assert_eq!(number(f64::NAN), "NaN");
    }
}
