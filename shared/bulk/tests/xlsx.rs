//! `.xlsx` reading against workbooks written byte by byte.

mod support;

use peak_bulk::{
    Column, FileError, Limits, Row, RowOutcome, Validator, codes, open_bytes, read_xlsx,
};
use peak_domain::ProfileId;
use peak_domain::catalogue::catalogue;
use std::io::Cursor;
use support::{X, book_parts, header, row, shared_strings_xml, sheet_xml, xlsx, zip_parts};

fn read(bytes: &[u8]) -> Result<Vec<Row>, FileError> {
    read_with(bytes, &Limits::default())
}

fn read_with(bytes: &[u8], limits: &Limits) -> Result<Vec<Row>, FileError> {
    read_xlsx(Cursor::new(bytes), limits)?.collect()
}

fn validator() -> Validator<'static> {
    Validator::new(
        catalogue(),
        [("Standard", ProfileId::generate())],
        &Limits::default(),
    )
}

fn user(first: &'static str, email: X, accounts: X) -> Vec<Option<X>> {
    row(vec![
        X::Shared(first),
        X::S("Lovelace"),
        email,
        X::S("customer"),
        X::Shared("Standard"),
        X::S("Billing Manager"),
        accounts,
    ])
}

#[test]
fn reads_the_first_worksheet_with_shared_inline_and_numeric_cells() {
    let rows = [
        header(),
        user("Ada", X::Shared("ada@example.com"), X::N(12345.0)),
        vec![],
        row(vec![X::S(" "), X::S("")]),
        user("Grace", X::S("grace@example.com"), X::S("ACME-1; ACME-2")),
    ];
    let (sheet1, shared) = sheet_xml(&rows);
    let (sheet2, _) = sheet_xml(&[row(vec![X::S("not"), X::S("this")])]);
    let book = zip_parts(&book_parts(
        &sheet1,
        Some(&sheet2),
        Some(&shared_strings_xml(&shared)),
    ));
    let got = read(&book).unwrap();
    let numbers: Vec<u32> = got.iter().map(|r| r.row).collect();
    assert_eq!(numbers, [2, 5]);
    assert_eq!(got[0].get(Column::FirstName), "Ada");
    assert_eq!(got[0].get(Column::Email), "ada@example.com");
    assert_eq!(got[0].get(Column::CustomerAccounts), "12345");
    assert_eq!(got[1].get(Column::CustomerAccounts), "ACME-1; ACME-2");
    let mut v = validator();
    for r in &got {
        assert!(matches!(v.check(r), RowOutcome::Valid(_)), "{r:?}");
    }
    // The same through format detection, whatever the name says.
    let via_open: Vec<Row> = open_bytes(&book, Some("users.csv"), None, &Limits::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(via_open, got);
}

#[test]
fn formulas_read_as_their_saved_values_never_as_formula_text() {
    let rows = [
        header(),
        user(
            "Ada",
            X::FormulaStr("LOWER(\"ADA@EXAMPLE.COM\")", Some("ada@example.com")),
            X::FormulaNum("1000+1", Some(1001.0)),
        ),
        // Saved without a value (as some generators do): reads as empty.
        user(
            "Grace",
            X::FormulaStr("CONCAT(A3,\"@example.com\")", None),
            X::FormulaNum("1+1", None),
        ),
        row(vec![
            X::S("Alan"),
            X::Bool(true),
            X::Err("#N/A"),
            X::S("admin"),
            X::S("Standard"),
        ]),
    ];
    let got = read(&xlsx(&rows)).unwrap();
    assert_eq!(got.len(), 3);
    for r in &got {
        for c in Column::ALL {
            let v = r.get(c);
            assert!(
                !v.starts_with('=') && !v.contains("LOWER") && !v.contains("CONCAT"),
                "{v:?}"
            );
        }
    }
    assert_eq!(got[0].get(Column::Email), "ada@example.com");
    assert_eq!(got[0].get(Column::CustomerAccounts), "1001");
    assert_eq!(got[1].get(Column::Email), "");
    assert_eq!(got[1].get(Column::CustomerAccounts), "");
    assert_eq!(got[2].get(Column::LastName), "TRUE");
    assert_eq!(got[2].get(Column::Email), "#N/A");

    let mut v = validator();
    assert!(matches!(v.check(&got[0]), RowOutcome::Valid(_)));
    let RowOutcome::Invalid(r) = v.check(&got[1]) else {
        panic!()
    };
    let found: Vec<_> = r
        .issues
        .iter()
        .map(|i| (i.code, i.column.as_deref()))
        .collect();
    assert_eq!(
        found,
        [
            (codes::REQUIRED, Some("email")),
            (codes::ACCOUNT_REQUIRED, Some("customer_accounts"))
        ]
    );
}

#[test]
fn a_header_it_cannot_use_is_a_file_error() {
    let rows = [row(vec![X::S("Name"), X::S("E-mail")])];
    let err = read(&xlsx(&rows)).unwrap_err();
    assert_eq!(err.code(), "bad_header");
    assert_eq!(
        read(&xlsx(&[vec![], vec![]])).unwrap_err(),
        FileError::NoHeader
    );
}

#[test]
fn caps_rows_columns_and_cell_length() {
    let limits = Limits {
        max_rows: 2,
        ..Limits::default()
    };
    let u = || user("Ada", X::S("a@example.com"), X::S("A-1"));
    let book = xlsx(&[header(), u(), u(), u()]);
    assert_eq!(
        read_with(&book, &limits).unwrap_err(),
        FileError::TooManyRows { max: 2 }
    );
    assert_eq!(read(&book).unwrap().len(), 3);

    let mut wide = user("Ada", X::S("a@example.com"), X::S("A-1"));
    wide.resize(40, None);
    wide.push(Some(X::S("far right")));
    assert_eq!(
        read(&xlsx(&[header(), wide])).unwrap_err(),
        FileError::TooManyColumns { row: 2, max: 32 }
    );

    // One cell at the sheet's far corner: refused without building a grid.
    let sparse = r#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="A1:XFD1048576"/><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c></row><row r="1048576"><c r="XFD1048576"><v>1</v></c></row></sheetData></worksheet>"#;
    let book = zip_parts(&book_parts(sparse, None, None));
    assert_eq!(
        read(&book).unwrap_err(),
        FileError::TooManyColumns {
            row: 1_048_576,
            max: 32
        }
    );

    // A 5,000-character shared string is kept as 1,001 characters: enough
    // for the validator to say "too long", not the whole text.
    let long: &'static str = Box::leak("x".repeat(5_000).into_boxed_str());
    let got = read(&xlsx(&[
        header(),
        user(long, X::S("a@example.com"), X::S("A-1")),
    ]))
    .unwrap();
    assert_eq!(got[0].get(Column::FirstName).chars().count(), 1_001);
    let RowOutcome::Invalid(r) = validator().check(&got[0]) else {
        panic!()
    };
    assert_eq!(r.issues[0].code, codes::TOO_LONG);
}

#[test]
fn shared_strings_cannot_blow_up_the_kept_text() {
    // One 900-character string used 5 times on each of 100 rows: a tiny
    // archive, 450 KB of text.
    let s: &'static str = Box::leak("y".repeat(900).into_boxed_str());
    let mut rows = vec![header()];
    for _ in 0..100 {
        rows.push(row(vec![X::Shared(s); 5]));
    }
    let book = xlsx(&rows);
    assert!(book.len() < 10_000, "{}", book.len());
    let limits = Limits {
        max_xlsx_uncompressed_bytes: 100_000,
        ..Limits::default()
    };
    let err = read_with(&book, &limits).unwrap_err();
    assert_eq!(err.code(), "unsafe_archive", "{err}");
    assert!(err.to_string().contains("text"), "{err}");
}

#[test]
fn archive_limits_are_checked_before_the_workbook_is_opened() {
    let book = xlsx(&[header()]);
    // Part count.
    let few = Limits {
        max_xlsx_entries: 3,
        ..Limits::default()
    };
    let err = read_with(&book, &few).unwrap_err();
    assert!(err.to_string().contains("parts"), "{err}");
    // Total uncompressed size.
    let small = Limits {
        max_xlsx_uncompressed_bytes: 1_000,
        ..Limits::default()
    };
    let err = read_with(&book, &small).unwrap_err();
    assert!(err.to_string().contains("unpacks to more than"), "{err}");
    // The compressed file itself.
    let tiny = Limits {
        max_file_bytes: 100,
        ..Limits::default()
    };
    assert_eq!(
        read_with(&book, &tiny).unwrap_err(),
        FileError::TooLarge { max_bytes: 100 }
    );

    // Compression ratio: 4 MiB of zeros deflate to a few KB.
    let (sheet, _) = sheet_xml(&[header()]);
    let mut parts = book_parts(&sheet, None, None);
    parts.push(("xl/media/zeros.bin".into(), vec![0u8; 4 << 20]));
    let err = read(&zip_parts(&parts)).unwrap_err();
    assert!(
        err.to_string().contains("compressed more than 100:1"),
        "{err}"
    );

    // A shared-string table claiming billions of strings (calamine would
    // reserve room for them).
    let sst = r#"<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" uniqueCount = "99999999999"><si><t>a</t></si></sst>"#;
    let err = read(&zip_parts(&book_parts(&sheet, None, Some(sst)))).unwrap_err();
    assert!(err.to_string().contains("shared-string"), "{err}");
}

#[test]
fn a_part_larger_than_declared_is_refused() {
    let (sheet, _) = sheet_xml(&[header(), user("Ada", X::S("a@example.com"), X::S("A"))]);
    let mut book = zip_parts(&book_parts(&sheet, None, None));
    let name = b"xl/worksheets/sheet1.xml";
    // Shrink the declared uncompressed size in the local and central headers.
    let mut patched = 0;
    for i in 0..book.len().saturating_sub(50) {
        let sig: [u8; 4] = book[i..i + 4].try_into().unwrap();
        if &sig == b"PK\x03\x04" && &book[i + 30..i + 30 + name.len()] == name {
            book[i + 22..i + 26].copy_from_slice(&40u32.to_le_bytes());
            patched += 1;
        }
        if &sig == b"PK\x01\x02" && &book[i + 46..i + 46 + name.len()] == name {
            book[i + 24..i + 28].copy_from_slice(&40u32.to_le_bytes());
            patched += 1;
        }
    }
    assert_eq!(patched, 2);
    let err = read(&book).unwrap_err();
    assert!(
        matches!(err, FileError::UnsafeArchive(_) | FileError::InvalidXlsx(_)),
        "{err:?}"
    );
}

#[test]
fn things_that_are_not_workbooks_are_refused_clearly() {
    let other_zip = zip_parts(&[("hello.txt".into(), b"hi".to_vec())]);
    assert_eq!(read(&other_zip).unwrap_err().code(), "invalid_xlsx");
    assert_eq!(
        read(b"PK\x03\x04garbage").unwrap_err().code(),
        "invalid_xlsx"
    );
    assert_eq!(read(b"").unwrap_err().code(), "invalid_xlsx");
    let err = open_bytes(b"first,last", Some("users.xlsx"), None, &Limits::default())
        .err()
        .unwrap();
    assert_eq!(err.code(), "invalid_xlsx");
}

#[test]
fn cell_references_that_would_overflow_calamine_are_refused() {
    // Found by the xlsx_reader fuzz target: calamine multiplies column
    // letters in u32 without a check (a panic in debug builds).
    let found = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus/xlsx_reader/regress_ref_overflow.sheet.xml"),
    )
    .unwrap();
    let sheet = |body: &str| {
        format!(
            r#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">{body}</worksheet>"#
        )
    };
    let cases = [
        String::from_utf8_lossy(&found).into_owned(),
        sheet(r#"<sheetData><row r="1"><c r="AAAAAAAAAA1"><v>1</v></c></row></sheetData>"#),
        sheet(r#"<sheetData><row r="99999999999"><c><v>1</v></c></row></sheetData>"#),
        sheet(r#"<dimension ref="B2:A1"/><sheetData></sheetData>"#),
        sheet(
            r#"<sheetData><row r="1"><x:c x:r   =  'ZZZZZZZZ1'><v>1</v></x:c></row></sheetData>"#,
        ),
    ];
    for xml in &cases {
        let book = zip_parts(&book_parts(xml, None, None));
        let err = read(&book).unwrap_err();
        assert_eq!(err.code(), "invalid_xlsx", "{xml}: {err}");
    }
    // Ordinary references still read.
    let ok = sheet(
        r#"<dimension ref="A1:G2"/><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>First name</t></is></c><c r="B1" t="inlineStr"><is><t>Last name</t></is></c><c r="C1" t="inlineStr"><is><t>Email</t></is></c><c r="D1" t="inlineStr"><is><t>Role</t></is></c><c r="E1" t="inlineStr"><is><t>Profile</t></is></c></row><row r="2"><c r="A2"><v>1</v></c></row></sheetData>"#,
    );
    let got = read(&zip_parts(&book_parts(&ok, None, None))).unwrap();
    assert_eq!((got[0].row, got[0].get(Column::FirstName)), (2, "1"));
}

#[test]
fn an_account_import_and_a_bulk_update_read_from_workbooks_too() {
    use peak_bulk::{AccountRows, Sheet, open_bytes_sheet};
    let book = xlsx(&[
        row(vec![
            X::S("Account number"),
            X::S("Name"),
            X::S("Parent"),
            X::S("Status"),
        ]),
        row(vec![
            X::S("EU"),
            X::Shared("Europe"),
            X::S("HQ"),
            X::S("active"),
        ]),
        row(vec![
            X::N(1001.0),
            X::Shared("Numbered"),
            X::S(""),
            X::S("closed"),
        ]),
    ]);
    let rows: Vec<Row> =
        open_bytes_sheet(Sheet::AccountImport, &book, None, None, &Limits::default())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let mut check = AccountRows::new(&Limits::default());
    let eu = check.check(&rows[0]).unwrap();
    assert_eq!((eu.row, eu.upsert.parent.as_deref()), (2, Some("HQ")));
    let numbered = check.check(&rows[1]).unwrap();
    assert_eq!(
        numbered.number.as_str(),
        "1001",
        "a number cell reads as its digits"
    );
    assert_eq!(numbered.upsert.status.as_deref(), Some("closed"));

    let book = xlsx(&[
        row(vec![X::S("Email"), X::S("Status")]),
        row(vec![X::S("ada@example.com"), X::S("Suspend")]),
    ]);
    let rows: Vec<Row> = open_bytes_sheet(Sheet::Update, &book, None, None, &Limits::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let c = validator().check_update(&rows[0]).unwrap();
    assert_eq!(c.action, Some(peak_bulk::StatusAction::Suspend));
    // An invite workbook is not an import.
    assert!(
        open_bytes_sheet(
            Sheet::AccountImport,
            &xlsx(&[header()]),
            None,
            None,
            &Limits::default()
        )
        .is_err()
    );
}
