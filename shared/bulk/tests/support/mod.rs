//! Test workbooks: minimal OOXML parts zipped by hand, so a test controls
//! every byte (formulas with or without a saved value, shared and inline
//! strings, sparse cells, lying archives).
#![allow(dead_code)]

use std::io::{Cursor, Write};
use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, ZipWriter};

/// A cell of a test sheet.
#[derive(Debug, Clone)]
pub enum X {
    /// Inline string.
    S(&'static str),
    /// Owned inline string.
    Owned(String),
    /// Shared string (index into the table built from these).
    Shared(&'static str),
    N(f64),
    Bool(bool),
    /// A formula with a saved string value (or none).
    FormulaStr(&'static str, Option<&'static str>),
    /// A formula with a saved number (or none).
    FormulaNum(&'static str, Option<f64>),
    /// An error value like `#N/A`.
    Err(&'static str),
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn col_letters(mut c: u32) -> String {
    let mut out = Vec::new();
    c += 1;
    while c > 0 {
        out.push(b'A' + ((c - 1) % 26) as u8);
        c = (c - 1) / 26;
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

/// Sheet XML and the shared-string table for rows of cells (row 1 first,
/// column A first; `None` leaves a cell out).
pub fn sheet_xml(rows: &[Vec<Option<X>>]) -> (String, Vec<String>) {
    let mut shared: Vec<String> = Vec::new();
    let mut xml = String::from(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#,
    );
    for (r, row) in rows.iter().enumerate() {
        let rn = r + 1;
        xml.push_str(&format!(r#"<row r="{rn}">"#));
        for (c, cell) in row.iter().enumerate() {
            let Some(cell) = cell else { continue };
            let at = format!("{}{rn}", col_letters(c as u32));
            let c = match cell {
                X::S(s) => format!(
                    r#"<c r="{at}" t="inlineStr"><is><t>{}</t></is></c>"#,
                    esc(s)
                ),
                X::Owned(s) => {
                    format!(
                        r#"<c r="{at}" t="inlineStr"><is><t>{}</t></is></c>"#,
                        esc(s)
                    )
                }
                X::Shared(s) => {
                    let i = shared.iter().position(|x| x == s).unwrap_or_else(|| {
                        shared.push((*s).to_owned());
                        shared.len() - 1
                    });
                    format!(r#"<c r="{at}" t="s"><v>{i}</v></c>"#)
                }
                X::N(n) => format!(r#"<c r="{at}"><v>{n}</v></c>"#),
                X::Bool(b) => format!(r#"<c r="{at}" t="b"><v>{}</v></c>"#, u8::from(*b)),
                X::FormulaStr(f, v) => format!(
                    r#"<c r="{at}" t="str"><f>{}</f>{}</c>"#,
                    esc(f),
                    v.map(|v| format!("<v>{}</v>", esc(v))).unwrap_or_default()
                ),
                X::FormulaNum(f, v) => format!(
                    r#"<c r="{at}"><f>{}</f>{}</c>"#,
                    esc(f),
                    v.map(|v| format!("<v>{v}</v>")).unwrap_or_default()
                ),
                X::Err(e) => format!(r#"<c r="{at}" t="e"><v>{}</v></c>"#, esc(e)),
            };
            xml.push_str(&c);
        }
        xml.push_str("</row>");
    }
    xml.push_str("</sheetData></worksheet>");
    (xml, shared)
}

pub fn shared_strings_xml(shared: &[String]) -> String {
    let mut xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{0}" uniqueCount="{0}">"#,
        shared.len()
    );
    for s in shared {
        xml.push_str(&format!("<si><t>{}</t></si>", esc(s)));
    }
    xml.push_str("</sst>");
    xml
}

/// The parts of a workbook whose first sheet ("Users") is `sheet1` and
/// second ("Other") is `sheet2`.
pub fn book_parts(
    sheet1: &str,
    sheet2: Option<&str>,
    shared: Option<&str>,
) -> Vec<(String, Vec<u8>)> {
    let mut parts = vec![
        (
            "[Content_Types].xml".to_owned(),
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/worksheets/sheet2.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>"#.as_bytes().to_vec(),
        ),
        (
            "_rels/.rels".to_owned(),
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.as_bytes().to_vec(),
        ),
    ];
    let mut sheets = r#"<sheet name="Users" sheetId="1" r:id="rId1"/>"#.to_owned();
    let mut rels = r#"<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>"#.to_owned();
    if sheet2.is_some() {
        sheets.push_str(r#"<sheet name="Other" sheetId="2" r:id="rId2"/>"#);
        rels.push_str(r#"<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet2.xml"/>"#);
    }
    parts.push((
        "xl/workbook.xml".to_owned(),
        format!(r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>{sheets}</sheets></workbook>"#).into_bytes(),
    ));
    parts.push((
        "xl/_rels/workbook.xml.rels".to_owned(),
        format!(r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{rels}</Relationships>"#).into_bytes(),
    ));
    parts.push((
        "xl/worksheets/sheet1.xml".to_owned(),
        sheet1.as_bytes().to_vec(),
    ));
    if let Some(s2) = sheet2 {
        parts.push((
            "xl/worksheets/sheet2.xml".to_owned(),
            s2.as_bytes().to_vec(),
        ));
    }
    if let Some(sh) = shared {
        parts.push(("xl/sharedStrings.xml".to_owned(), sh.as_bytes().to_vec()));
    }
    parts
}

/// Zips parts (deflated).
pub fn zip_parts(parts: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, bytes) in parts {
        w.start_file(name.as_str(), opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A workbook whose first sheet holds `rows`.
pub fn xlsx(rows: &[Vec<Option<X>>]) -> Vec<u8> {
    let (sheet, shared) = sheet_xml(rows);
    let sst = shared_strings_xml(&shared);
    zip_parts(&book_parts(&sheet, None, Some(&sst)))
}

/// A row of present cells.
pub fn row(cells: Vec<X>) -> Vec<Option<X>> {
    cells.into_iter().map(Some).collect()
}

pub fn header() -> Vec<Option<X>> {
    row(vec![
        X::S("First name"),
        X::S("Last name"),
        X::S("Email"),
        X::S("Role"),
        X::S("Profile"),
        X::S("Extension groups"),
        X::S("Customer accounts"),
    ])
}
