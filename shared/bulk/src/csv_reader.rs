//! CSV uploads, streamed one record at a time.
//!
//! UTF-8 with or without a byte-order mark; the delimiter is `,` unless the
//! header line clearly uses `;` or tabs (or starts with Excel's `sep=X`
//! line). Memory is bounded by the longest allowed row
//! ([`Limits::max_csv_row_bytes`]), whatever the input: a row past it (an
//! unclosed quote) is refused before it is buffered.

use crate::columns::Header;
use crate::{FileError, Limits, Row};
use std::io::{self, Chain, Cursor, Read};

/// The header line is looked for in the first this-many bytes.
const SNIFF_BYTES: usize = 64 << 10;
/// What the CSV parser may hold beyond a record's own bytes.
const PARSER_BUFFER: usize = 8 << 10;

/// Data rows of a CSV file; see [`read_csv`].
pub struct CsvRows<R: Read> {
    rdr: csv::Reader<Capped<Chain<Cursor<Vec<u8>>, R>>>,
    header: Header,
    record: csv::ByteRecord,
    limits: Limits,
    /// Spreadsheet row of the last record read.
    last_row: u32,
    /// Line breaks inside quoted fields so far: lines that are not rows.
    inner_breaks: u64,
    /// 1-based line of the text consumed so far.
    line: u64,
    data_rows: u32,
    done: bool,
}

impl<R: Read> std::fmt::Debug for CsvRows<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvRows")
            .field("last_row", &self.last_row)
            .field("data_rows", &self.data_rows)
            .field("done", &self.done)
            .finish()
    }
}

/// Reads the header row and returns the data rows as an iterator. Header
/// problems, a UTF-16 or binary file are errors here; later problems (too
/// many rows, non-UTF-8 text, a row over the size cap) end the iteration
/// with one `Err`.
pub fn read_csv<R: Read>(input: R, limits: &Limits) -> Result<CsvRows<R>, FileError> {
    read_csv_sheet(crate::Sheet::Invite, input, limits)
}

/// [`read_csv`] for the file of any job kind.
pub fn read_csv_sheet<R: Read>(
    sheet: crate::Sheet,
    mut input: R,
    limits: &Limits,
) -> Result<CsvRows<R>, FileError> {
    let mut prefix = Vec::with_capacity(PARSER_BUFFER);
    let mut chunk = [0u8; PARSER_BUFFER];
    while prefix.len() < SNIFF_BYTES && !prefix.contains(&b'\n') {
        match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => prefix.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FileError::Io(e.to_string())),
        }
    }
    if prefix.starts_with(&[0xFF, 0xFE]) || prefix.starts_with(&[0xFE, 0xFF]) {
        return Err(FileError::Utf16);
    }
    if prefix.starts_with(&[0xEF, 0xBB, 0xBF]) {
        prefix.drain(..3);
    }
    let first_line_end = prefix
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(prefix.len());
    let first_line = &prefix[..first_line_end];
    if first_line.contains(&0) {
        return Err(FileError::Binary);
    }
    let delimiter = match excel_sep_line(first_line) {
        Some(d) => {
            prefix.drain(..(first_line_end + 1).min(prefix.len()));
            d
        }
        None => sniff_delimiter(first_line),
    };

    let mut limits = *limits;
    limits.max_columns = limits.max_columns.max(1);
    let capped = Capped {
        inner: Cursor::new(prefix).chain(input),
        read: 0,
        max_total: limits.max_file_bytes,
        window_end: u64::MAX,
        kept: Vec::new(),
        kept_from: 0,
    };
    let rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .buffer_capacity(PARSER_BUFFER)
        .from_reader(capped);
    let mut rows = CsvRows {
        rdr,
        header: Header::empty(),
        record: csv::ByteRecord::new(),
        limits,
        last_row: 0,
        inner_breaks: 0,
        line: 1,
        data_rows: 0,
        done: false,
    };
    let header = loop {
        match rows.next_record()? {
            None => return Err(FileError::NoHeader),
            Some(_) if rows.record_is_blank() => {}
            Some(row) => {
                rows.check_width(row)?;
                let cells = rows.decode(row)?;
                if cells.iter().all(|c| c.trim().is_empty()) {
                    continue;
                }
                break Header::parse(sheet, cells.iter().map(String::as_str))?;
            }
        }
    };
    rows.header = header;
    Ok(rows)
}

/// `sep=;` on the first line: Excel's way to name the delimiter.
fn excel_sep_line(line: &[u8]) -> Option<u8> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match line {
        [s, e, p, b'=', d] if [*s, *e, *p].eq_ignore_ascii_case(b"sep") && d.is_ascii() => {
            (!matches!(d, b'"' | b'\r' | b'\n')).then_some(*d)
        }
        _ => None,
    }
}

/// `;` or tab if the header line has more of them (outside quotes) than
/// commas; otherwise `,`.
fn sniff_delimiter(line: &[u8]) -> u8 {
    let (mut commas, mut semis, mut tabs) = (0usize, 0usize, 0usize);
    let mut quoted = false;
    for &b in line {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => commas += 1,
            b';' if !quoted => semis += 1,
            b'\t' if !quoted => tabs += 1,
            _ => {}
        }
    }
    if tabs > commas && tabs > semis {
        b'\t'
    } else if semis > commas {
        b';'
    } else {
        b','
    }
}

impl<R: Read> CsvRows<R> {
    /// The next record, with its spreadsheet row number.
    fn next_record(&mut self) -> Result<Option<u32>, FileError> {
        let start = self.rdr.position().byte();
        let window =
            start.saturating_add(self.limits.max_csv_row_bytes() + 2 * PARSER_BUFFER as u64);
        self.rdr.get_mut().window_end = window;
        match self.rdr.read_byte_record(&mut self.record) {
            Ok(false) => Ok(None),
            Ok(true) => {
                // The bytes this record took: the previous record's line
                // break (CRLF ends are consumed late), blank lines, then the
                // record and its own line break.
                let end = self.rdr.position().byte();
                let (before, all) = self.rdr.get_mut().consume(end, |bytes| {
                    let lead = bytes
                        .iter()
                        .take_while(|b| matches!(b, b'\r' | b'\n'))
                        .filter(|&&b| b == b'\n')
                        .count() as u64;
                    (lead, bytes.iter().filter(|&&b| b == b'\n').count() as u64)
                });
                let start_line = self.line.saturating_add(before);
                self.line = self.line.saturating_add(all);
                let inside: u64 = self
                    .record
                    .iter()
                    .map(|f| f.iter().filter(|&&b| b == b'\n').count() as u64)
                    .sum();
                let row = start_line.saturating_sub(self.inner_breaks);
                self.inner_breaks = self.inner_breaks.saturating_add(inside);
                // Lone-CR line ends are records but no counted lines: keep
                // rows increasing whatever the count says.
                let row = u32::try_from(row)
                    .unwrap_or(u32::MAX)
                    .max(self.last_row.saturating_add(1));
                self.last_row = row;
                Ok(Some(row))
            }
            Err(e) => Err(self.map_error(e)),
        }
    }

    fn map_error(&self, e: csv::Error) -> FileError {
        let next_row = self.last_row.saturating_add(1);
        match e.into_kind() {
            csv::ErrorKind::Io(io) => match io.get_ref().and_then(|i| i.downcast_ref::<CapHit>()) {
                Some(CapHit::File) => FileError::TooLarge {
                    max_bytes: self.limits.max_file_bytes,
                },
                Some(CapHit::Row) => FileError::RowTooLong {
                    row: next_row,
                    max_bytes: self.limits.max_csv_row_bytes(),
                },
                None => FileError::Io(io.to_string()),
            },
            other => FileError::Io(format!("{other:?}")),
        }
    }

    /// Only ASCII whitespace: skipped without decoding (rows are checked
    /// again with [`Row::is_blank`] once decoded).
    fn record_is_blank(&self) -> bool {
        self.record
            .iter()
            .all(|f| f.iter().all(u8::is_ascii_whitespace))
    }

    fn check_width(&self, row: u32) -> Result<(), FileError> {
        if self.record.len() > self.limits.max_columns as usize {
            return Err(FileError::TooManyColumns {
                row,
                max: self.limits.max_columns,
            });
        }
        Ok(())
    }

    fn decode(&self, row: u32) -> Result<Vec<String>, FileError> {
        self.record
            .iter()
            .map(|f| {
                std::str::from_utf8(f)
                    .map(str::to_owned)
                    .map_err(|_| FileError::NotUtf8 { row })
            })
            .collect()
    }

    fn next_row(&mut self) -> Result<Option<Row>, FileError> {
        loop {
            let Some(number) = self.next_record()? else {
                return Ok(None);
            };
            if self.record_is_blank() {
                continue;
            }
            self.check_width(number)?;
            let mut row = Row::new(number);
            for (i, field) in self.record.iter().enumerate() {
                let text =
                    std::str::from_utf8(field).map_err(|_| FileError::NotUtf8 { row: number })?;
                match self.header.slot(i) {
                    Some(column) => row.set(column, text),
                    None if row.stray_column.is_none() && !text.trim().is_empty() => {
                        row.stray_column = Some(i as u32);
                    }
                    None => {}
                }
            }
            // Blank by Unicode's measure too (no-break spaces, vertical tabs).
            if row.is_blank() {
                continue;
            }
            self.data_rows += 1;
            if self.data_rows > self.limits.max_rows {
                return Err(FileError::TooManyRows {
                    max: self.limits.max_rows,
                });
            }
            return Ok(Some(row));
        }
    }
}

impl<R: Read> Iterator for CsvRows<R> {
    type Item = Result<Row, FileError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_row() {
            Ok(Some(row)) => Some(Ok(row)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Which cap a read ran into.
#[derive(Debug)]
enum CapHit {
    File,
    Row,
}

impl std::fmt::Display for CapHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CapHit::File => "file size limit",
            CapHit::Row => "row size limit",
        })
    }
}

impl std::error::Error for CapHit {}

/// Counts bytes and refuses to read past the file cap or the current row's
/// window, so a huge file or an endless quoted field never gets buffered.
/// Keeps the bytes handed out until the parser has consumed them, so line
/// breaks can be counted exactly (bounded by the window).
struct Capped<R> {
    inner: R,
    read: u64,
    max_total: u64,
    window_end: u64,
    kept: Vec<u8>,
    /// Offset of `kept[0]` in the input.
    kept_from: u64,
}

impl<R> Capped<R> {
    /// Looks at the bytes up to offset `upto` once, then forgets them.
    fn consume<T>(&mut self, upto: u64, f: impl FnOnce(&[u8]) -> T) -> T {
        let n = usize::try_from(upto.saturating_sub(self.kept_from))
            .unwrap_or(usize::MAX)
            .min(self.kept.len());
        let out = f(&self.kept[..n]);
        self.kept.drain(..n);
        self.kept_from += n as u64;
        out
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // One byte past the file cap tells "exactly at the cap" from "over".
        let file_room = self.max_total.saturating_add(1).saturating_sub(self.read);
        let row_room = self.window_end.saturating_sub(self.read);
        if row_room == 0 {
            return Err(io::Error::other(CapHit::Row));
        }
        let room = file_room.min(row_room);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.kept.extend_from_slice(&buf[..n]);
        self.read += n as u64;
        if self.read > self.max_total {
            return Err(io::Error::other(CapHit::File));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Column;

    fn rows(text: &[u8]) -> Result<Vec<Row>, FileError> {
        read_csv(text, &Limits::default())?.collect()
    }

    const HEAD: &str = "first name,last name,email,role,profile\n";

    #[test]
    fn reads_rows_by_header_with_spreadsheet_row_numbers() {
        let text = format!(
            "{HEAD}Ada,Lovelace,ada@example.com,customer,Std\n\n,,,,\n\"Grace\nBrewster\",Hopper,grace@example.com,admin,Std\nAlan,Turing,alan@example.com,admin,Std\n"
        );
        let got = rows(text.as_bytes()).unwrap();
        let numbers: Vec<u32> = got.iter().map(|r| r.row).collect();
        assert_eq!(numbers, [2, 5, 6]);
        assert_eq!(got[1].get(Column::FirstName), "Grace\nBrewster");
        assert_eq!(got[2].get(Column::Email), "alan@example.com");
        assert_eq!(got[2].get(Column::CustomerAccounts), "");
    }

    #[test]
    fn row_numbers_count_blank_lines_with_any_line_ends() {
        let lf = format!(
            "\n{HEAD}a,b,a@b.co,admin,P\n\n\n\"x\ny\nz\",b,c@b.co,admin,P\n\nd,e,d@b.co,admin,P"
        );
        let crlf = lf.replace('\n', "\r\n");
        for text in [lf, crlf] {
            let got = rows(text.as_bytes()).unwrap();
            let numbers: Vec<u32> = got.iter().map(|r| r.row).collect();
            assert_eq!(numbers, [3, 6, 8], "{text:?}");
        }
        // Old Mac line ends: no blank-line counting, but rows still increase.
        let cr = format!("{HEAD}a,b,a@b.co,admin,P\rc,d,c@b.co,admin,P\r").replace('\n', "\r");
        let numbers: Vec<u32> = rows(cr.as_bytes()).unwrap().iter().map(|r| r.row).collect();
        assert_eq!(numbers, [2, 3]);
    }

    #[test]
    fn rows_blank_by_unicode_whitespace_are_skipped_too() {
        // Found by the csv_reader fuzz target: a row of vertical tabs was
        // yielded although `Row::is_blank` calls it blank.
        let text = format!("\u{a0}\n{HEAD}\x0b,\u{a0}\n\x0c\t\na,b,a@b.co,admin,P\n");
        let got = rows(text.as_bytes()).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].row, 5);
        let limits = Limits {
            max_rows: 1,
            ..Limits::default()
        };
        let trailing = format!("{text}\u{a0},\u{2003}\n");
        let got: Result<Vec<_>, _> = read_csv(trailing.as_bytes(), &limits).unwrap().collect();
        assert_eq!(got.unwrap().len(), 1);
    }

    #[test]
    fn strips_a_bom_and_takes_semicolons_when_the_header_uses_them() {
        let text = "\u{feff}First Name;Last Name;E-mail;Role;Profile;Accounts\r\nAda;Lovelace;ada@example.com;customer;Std;A-1,A-2\r\n";
        let got = rows(text.as_bytes()).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].row, 2);
        assert_eq!(got[0].get(Column::FirstName), "Ada");
        assert_eq!(got[0].get(Column::CustomerAccounts), "A-1,A-2");
    }

    #[test]
    fn honours_excel_sep_line_and_tabs() {
        let text = "sep=|\nfirst name|last name|email|role|profile\nA|B|a@b.co|admin|P\n";
        let got = rows(text.as_bytes()).unwrap();
        assert_eq!((got[0].row, got[0].get(Column::Email)), (2, "a@b.co"));
        let tsv = "first name\tlast name\temail\trole\tprofile\nA\tB\ta@b.co\tadmin\tP\n";
        assert_eq!(rows(tsv.as_bytes()).unwrap()[0].get(Column::Role), "admin");
    }

    #[test]
    fn refuses_utf16_binary_and_non_utf8() {
        assert_eq!(rows(&[0xFF, 0xFE, b'a', 0]).unwrap_err(), FileError::Utf16);
        assert_eq!(rows(b"a\0b,c\n").unwrap_err(), FileError::Binary);
        let mut latin1 = HEAD.as_bytes().to_vec();
        latin1.extend_from_slice(b"Jos\xe9,X,j@example.com,admin,P\n");
        assert_eq!(rows(&latin1).unwrap_err(), FileError::NotUtf8 { row: 2 });
    }

    #[test]
    fn empty_files_and_bad_headers_are_file_errors() {
        assert_eq!(rows(b"").unwrap_err(), FileError::NoHeader);
        assert_eq!(rows(b"\n\n ,  \n").unwrap_err(), FileError::NoHeader);
        let err = rows(b"first name,email,phone\n").unwrap_err();
        assert_eq!(err.code(), "bad_header");
    }

    #[test]
    fn values_under_no_header_are_marked_stray() {
        let text = "first name,,last name,email,role,profile\nA,x,B,a@b.co,admin,P,,more\n";
        let got = rows(text.as_bytes()).unwrap();
        assert_eq!(got[0].stray_column, Some(1));
        assert_eq!(got[0].get(Column::LastName), "B");
    }

    #[test]
    fn caps_rows_columns_row_bytes_and_file_bytes() {
        let limits = Limits {
            max_rows: 2,
            ..Limits::default()
        };
        let text = format!("{HEAD}a,b,a@b.co,admin,P\na,b,a@b.co,admin,P\na,b,a@b.co,admin,P\n");
        let got: Vec<_> = read_csv(text.as_bytes(), &limits).unwrap().collect();
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[2].as_ref().unwrap_err(),
            &FileError::TooManyRows { max: 2 }
        );

        let wide = format!("{HEAD}{}\n", "x,".repeat(40));
        assert_eq!(
            rows(wide.as_bytes()).unwrap_err(),
            FileError::TooManyColumns { row: 2, max: 32 }
        );

        // An unclosed quote swallowing the rest of a big file.
        let mut open_quote = format!("{HEAD}\"a").into_bytes();
        open_quote.extend(std::iter::repeat_n(b'x', 600_000));
        let err = rows(&open_quote).unwrap_err();
        assert!(
            matches!(err, FileError::RowTooLong { row: 2, .. }),
            "{err:?}"
        );

        let small = Limits {
            max_file_bytes: 100,
            ..Limits::default()
        };
        let big = format!("{HEAD}{}", "a,b,a@b.co,admin,P\n".repeat(10));
        // Small files fail while the header is read; big ones mid-stream.
        assert_eq!(
            read_csv(big.as_bytes(), &small).unwrap_err(),
            FileError::TooLarge { max_bytes: 100 }
        );
        let huge = format!("{HEAD}{}", "a,b,a@b.co,admin,P\n".repeat(10_000));
        let small = Limits {
            max_file_bytes: 100_000,
            ..Limits::default()
        };
        let got: Vec<_> = read_csv(huge.as_bytes(), &small).unwrap().collect();
        assert!(got.len() > 4000, "{}", got.len());
        assert_eq!(
            got.last().unwrap().as_ref().unwrap_err(),
            &FileError::TooLarge { max_bytes: 100_000 }
        );
        // Exactly at the cap is fine.
        let exact = Limits {
            max_file_bytes: big.len() as u64,
            ..Limits::default()
        };
        assert!(read_csv(big.as_bytes(), &exact).unwrap().all(|r| r.is_ok()));
    }
}
