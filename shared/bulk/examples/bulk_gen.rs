//! Writes an N-row valid bulk-invite CSV (or `.xlsx`, if the path ends so),
//! for benchmarks:
//!
//! ```sh
//! cargo run --release -p peak-bulk --example bulk_gen -- 100000 /tmp/users.csv
//! cargo run --release -p peak-bulk --example bulk_gen -- 100000 /tmp/users.xlsx
//! ```
//!
//! Profiles used: "Standard" and "VIP" (what `bulk_check` knows).

use std::io::{BufWriter, Write};

const ROLES: [&str; 4] = ["customer", "sales_rep", "partner", "admin"];
const GROUPS: [&str; 4] = [
    "customer_order_entry",
    "Billing Manager;case_manager",
    "",
    "user_manager",
];

fn user(i: u64) -> [String; 7] {
    let role = ROLES[(i % 4) as usize];
    let accounts = if role == "customer" || i.is_multiple_of(3) {
        format!("ACME-{:04};ACME-{:04}", i % 1000, (i + 7) % 1000)
    } else {
        String::new()
    };
    [
        format!("First{i}"),
        format!("Last{i}"),
        format!("user{i}@example.com"),
        role.to_owned(),
        if i.is_multiple_of(2) {
            "Standard"
        } else {
            "VIP"
        }
        .to_owned(),
        GROUPS[(i % 4) as usize].to_owned(),
        accounts,
    ]
}

/// A minimal workbook: one sheet of inline strings, deflated.
fn write_xlsx(n: u64, path: &str) -> std::io::Result<()> {
    let header: Vec<String> = peak_bulk::Column::ALL
        .iter()
        .map(|c| c.label().to_owned())
        .collect();
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path)?);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let parts = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#,
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
        ),
        (
            "xl/workbook.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Users" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
        ),
        (
            "xl/_rels/workbook.xml.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
        ),
    ];
    for (name, text) in parts {
        zip.start_file(name, opts)?;
        zip.write_all(text.as_bytes())?;
    }
    zip.start_file("xl/worksheets/sheet1.xml", opts)?;
    zip.write_all(br#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#)?;
    let mut row = |r: u64, cells: &[String]| -> std::io::Result<()> {
        write!(zip, r#"<row r="{r}">"#)?;
        for (c, v) in cells.iter().enumerate() {
            if !v.is_empty() {
                let col = (b'A' + c as u8) as char;
                write!(
                    zip,
                    r#"<c r="{col}{r}" t="inlineStr"><is><t>{v}</t></is></c>"#
                )?;
            }
        }
        zip.write_all(b"</row>")
    };
    row(1, &header)?;
    for i in 0..n {
        row(i + 2, &user(i))?;
    }
    zip.write_all(b"</sheetData></worksheet>")?;
    zip.finish()?;
    Ok(())
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(n), Some(path)) = (args.next(), args.next()) else {
        eprintln!("usage: bulk_gen ROWS PATH");
        std::process::exit(2);
    };
    let n: u64 = n.parse().expect("ROWS must be a number");
    if path.ends_with(".xlsx") {
        write_xlsx(n, &path)?;
        eprintln!("wrote {n} rows to {path}");
        return Ok(());
    }
    let mut out = BufWriter::new(std::fs::File::create(&path)?);
    out.write_all(peak_bulk::TEMPLATE_CSV.lines().next().unwrap().as_bytes())?;
    out.write_all(b"\r\n")?;
    for i in 0..n {
        writeln!(out, "{}\r", user(i).join(","))?;
    }
    out.flush()?;
    eprintln!("wrote {n} rows to {path}");
    Ok(())
}
