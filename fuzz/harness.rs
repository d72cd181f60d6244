#![allow(dead_code)]

//! What the fuzz targets run, shared with peak-bulk's `tests/corpus.rs` so
//! the committed corpus is replayed on stable by `cargo test`.
//!
//! Both feed bytes through reader → validator → report CSV and check a few
//! invariants; nothing may panic.

use peak_bulk::{Entry, Format, Limits, Report, Row, Validator, read_csv, read_xlsx};
use peak_domain::ProfileId;
use peak_domain::catalogue::catalogue;
use std::io::{Cursor, Write};

/// Defaults, with archives kept small so each run stays fast.
pub fn limits() -> Limits {
    Limits {
        max_xlsx_uncompressed_bytes: 4 << 20,
        ..Limits::default()
    }
}

fn check_rows(rows: impl Iterator<Item = Result<Row, peak_bulk::FileError>>, increasing: bool) {
    let limits = limits();
    let profile = ProfileId::parse("01J0000000000000000000000A").unwrap();
    let mut validator = Validator::new(catalogue(), [("Standard", profile)], &limits)
        .with_exists_check(|e| e.normalized().starts_with("taken"));
    let mut report = Report::default();
    let mut last = 0;
    for row in rows {
        match row {
            Ok(row) => {
                assert!(row.row >= 1);
                if increasing {
                    assert!(row.row > last, "row {} after {last}", row.row);
                }
                last = row.row;
                assert!(!row.is_blank(), "blank row {} yielded", row.row);
                report.push(Entry::from_check(&validator.check(&row)));
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                report.fail_file(&e);
            }
        }
    }
    let mut out = Vec::new();
    report.write_csv(&mut out).unwrap();
    let mut rdr = csv::ReaderBuilder::new().from_reader(out.as_slice());
    for rec in rdr.records() {
        for field in rec.unwrap().iter() {
            assert!(
                !field.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "unescaped {field:?}"
            );
        }
    }
}

/// Arbitrary bytes as an uploaded CSV.
pub fn run_csv(data: &[u8]) {
    let _ = Format::detect(Some("upload.csv"), Some("text/csv"), data);
    match read_csv(data, &limits()) {
        Ok(rows) => check_rows(rows, true),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// Separates the sheet from the shared strings in a structured input.
pub const SST_MARK: &[u8] = b"\n--sst--\n";

/// Bytes starting with `PK` are an uploaded file as is. Anything else is
/// worksheet XML (then, after [`SST_MARK`], shared-strings XML) wrapped in a
/// well-formed workbook, so mutations reach calamine and the row builder
/// instead of stopping at zip checksums.
pub fn run_xlsx(data: &[u8]) {
    let book;
    let bytes = if data.starts_with(b"PK") {
        data
    } else {
        book = wrap_sheet(data);
        &book[..]
    };
    match read_xlsx(Cursor::new(bytes), &limits()) {
        Ok(rows) => check_rows(rows, false),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// A workbook (stored, not deflated) around a worksheet and an optional
/// shared-string table.
pub fn wrap_sheet(data: &[u8]) -> Vec<u8> {
    let (sheet, sst) = match data.windows(SST_MARK.len()).position(|w| w == SST_MARK) {
        Some(i) => (&data[..i], Some(&data[i + SST_MARK.len()..])),
        None => (data, None),
    };
    const RELS: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;
    const WORKBOOK: &str = r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Users" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
    const BOOK_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#;
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut part = |name: &str, bytes: &[u8]| {
        w.start_file(name, opts).unwrap();
        w.write_all(bytes).unwrap();
    };
    part("_rels/.rels", RELS.as_bytes());
    part("xl/workbook.xml", WORKBOOK.as_bytes());
    part("xl/_rels/workbook.xml.rels", BOOK_RELS.as_bytes());
    part("xl/worksheets/sheet1.xml", sheet);
    if let Some(sst) = sst {
        part("xl/sharedStrings.xml", sst);
    }
    w.finish().unwrap().into_inner()
}
