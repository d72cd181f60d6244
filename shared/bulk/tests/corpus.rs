//! Replays the fuzz seed corpus (`fuzz/corpus/<target>/`) on stable through
//! the same harness the fuzz targets run, and writes the `.xlsx` seeds
//! (`cargo test -p peak-bulk --test corpus -- --ignored`).

#[path = "../../../fuzz/harness.rs"]
mod harness;
mod support;

use std::path::{Path, PathBuf};
use support::{X, book_parts, header, row, shared_strings_xml, sheet_xml, xlsx, zip_parts};

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

fn files(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(corpus(target))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_corpus_file_goes_through_both_readers_without_panicking() {
    let csv = files("csv_reader");
    let xlsx = files("xlsx_reader");
    assert!(csv.len() >= 8, "{} csv seeds", csv.len());
    assert!(xlsx.len() >= 6, "{} xlsx seeds", xlsx.len());
    for (path, bytes) in csv.iter().chain(&xlsx) {
        let name = path.file_name().unwrap().to_string_lossy();
        // The target's own harness, the other format's, and detection.
        harness::run_csv(bytes);
        harness::run_xlsx(bytes);
        let limits = harness::limits();
        if let Ok(rows) = peak_bulk::open_bytes(bytes, Some(&name), None, &limits) {
            for r in rows {
                let _ = r;
            }
        }
    }
}

#[test]
fn the_valid_seeds_read_as_users() {
    for (file, rows) in [
        ("csv_reader/template.csv", 1),
        ("csv_reader/bom_semicolons.csv", 2),
        ("xlsx_reader/users.xlsx", 3),
        ("xlsx_reader/formulas.xlsx", 2),
    ] {
        let (target, name) = file.split_once('/').unwrap();
        let bytes = std::fs::read(corpus(target).join(name)).unwrap();
        let got = peak_bulk::open_bytes(&bytes, Some(name), None, &harness::limits())
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(got.len(), rows, "{file}");
    }
}

/// Writes the `.xlsx` seeds. Run by hand after changing them.
#[test]
#[ignore]
fn write_xlsx_seeds() {
    let dir = corpus("xlsx_reader");
    let put = |name: &str, bytes: Vec<u8>| std::fs::write(dir.join(name), bytes).unwrap();
    let user = |first: &'static str, email: X, accounts: X| {
        row(vec![
            X::Shared(first),
            X::S("Lovelace"),
            email,
            X::S("customer"),
            X::Shared("Standard"),
            X::S("Billing Manager"),
            accounts,
        ])
    };
    put(
        "users.xlsx",
        xlsx(&[
            header(),
            user("Ada", X::Shared("ada@example.com"), X::N(12345.0)),
            vec![],
            user("Grace", X::S("grace@example.com"), X::S("A-1;A-2")),
            user("Alan", X::S("GRACE@example.com"), X::S("bad#account")),
        ]),
    );
    put(
        "formulas.xlsx",
        xlsx(&[
            header(),
            user(
                "Ada",
                X::FormulaStr("LOWER(\"ADA@EXAMPLE.COM\")", Some("ada@example.com")),
                X::FormulaNum("1000+1", Some(1001.0)),
            ),
            user(
                "Grace",
                X::FormulaStr("CONCAT(A3,\"@example.com\")", None),
                X::Err("#N/A"),
            ),
        ]),
    );
    put(
        "bad_header.xlsx",
        xlsx(&[row(vec![X::S("Name"), X::S("E-mail"), X::Bool(true)])]),
    );
    let (sheet1, shared) = sheet_xml(&[header(), user("Ada", X::S("a@b.co"), X::S("A"))]);
    let (sheet2, _) = sheet_xml(&[row(vec![X::S("second"), X::S("sheet")])]);
    put(
        "two_sheets.xlsx",
        zip_parts(&book_parts(
            &sheet1,
            Some(&sheet2),
            Some(&shared_strings_xml(&shared)),
        )),
    );
    put(
        "not_a_workbook.xlsx",
        zip_parts(&[("hello.txt".into(), b"hi".to_vec())]),
    );
    // Structured seeds (worksheet XML, then shared strings): see harness.
    let (sheet, shared) = sheet_xml(&[
        header(),
        user("Ada", X::Shared("ada@example.com"), X::S("A-1")),
        row(vec![X::N(1.5), X::Bool(false), X::Err("#REF!")]),
    ]);
    let mut structured = sheet.into_bytes();
    structured.extend_from_slice(harness::SST_MARK);
    structured.extend_from_slice(shared_strings_xml(&shared).as_bytes());
    put("structured.sheet.xml", structured);
    put(
        "sparse.sheet.xml",
        br#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="A1:XFD1048576"/><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c></row><row r="1048576"><c r="XFD1048576"><v>1</v></c></row></sheetData></worksheet>"#
            .to_vec(),
    );
}
