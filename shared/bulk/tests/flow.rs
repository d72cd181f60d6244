//! The whole pure flow: upload bytes → rows → checks → report CSV.

use peak_bulk::{
    Column, Counts, Entry, FileError, Limits, Outcome, Report, RowOutcome, TEMPLATE_CSV, Validator,
    open_bytes, read_csv,
};
use peak_domain::ProfileId;
use peak_domain::catalogue::catalogue;

fn profiles() -> [(&'static str, ProfileId); 2] {
    [
        ("Standard", ProfileId::generate()),
        ("VIP", ProfileId::generate()),
    ]
}

#[test]
fn the_template_is_accepted_by_the_reader_and_the_validator() {
    let limits = Limits::default();
    let rows: Vec<_> = open_bytes(TEMPLATE_CSV.as_bytes(), Some("template.csv"), None, &limits)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].row, 2);
    let mut v = Validator::new(catalogue(), profiles(), &limits);
    let RowOutcome::Valid(c) = v.check(&rows[0]) else {
        panic!("{:?}", v.check(&rows[0]))
    };
    assert_eq!(
        c.extension_groups,
        ["billing_manager", "customer_order_entry"]
    );
    // Every column is in the template's header.
    let header = TEMPLATE_CSV.lines().next().unwrap();
    for col in Column::ALL {
        assert!(header.contains(col.label()), "{}", col.label());
    }
}

#[test]
fn a_dry_run_reports_every_row_and_a_real_run_marks_invites() {
    let upload = "\u{feff}First name;Last name;E-mail;Role;Profile;Extension groups;Accounts\r\n\
        Ada;Lovelace;ada@example.com;customer;standard;Billing Manager;ACME-1\r\n\
        Grace;Hopper;grace@example.com;Account Executive;VIP;;\r\n\
        ;;;;;;\r\n\
        Ada;Again;ADA@example.com;customer;standard;;ACME-1\r\n\
        =cmd|'/c calc'!A1;X;-evil@example.com;boss;Gold;;\r\n\
        Taken;User;taken@example.com;admin;Standard;;\r\n";
    let limits = Limits::default();
    let taken = ["taken@example.com".to_owned()];
    let mut v = Validator::new(catalogue(), profiles(), &limits)
        .with_exists_check(|e| taken.contains(&e.normalized()));
    let mut dry = Report::default();
    let mut valid = Vec::new();
    for row in open_bytes(
        upload.as_bytes(),
        Some("users.csv"),
        Some("text/csv"),
        &limits,
    )
    .unwrap()
    {
        let outcome = v.check(&row.unwrap());
        dry.push(Entry::from_check(&outcome));
        if let RowOutcome::Valid(c) = outcome {
            valid.push(c);
        }
    }
    assert_eq!(
        dry.counts,
        Counts {
            total: 5,
            valid: 2,
            skipped: 2,
            failed: 1,
            invited: 0,
            applied: 0
        }
    );
    let outcomes: Vec<(u32, Outcome)> = dry.entries.iter().map(|e| (e.row, e.outcome)).collect();
    assert_eq!(
        outcomes,
        [
            (2, Outcome::Valid),
            (3, Outcome::Valid),
            (5, Outcome::Skipped),
            (6, Outcome::Failed),
            (7, Outcome::Skipped),
        ]
    );
    let mut csv = Vec::new();
    dry.write_csv(&mut csv).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    assert!(
        csv.contains(
            "5,ADA@example.com,skipped,email,duplicate_email,the same email address is on row 2"
        ),
        "{csv}"
    );
    assert!(csv.contains("6,'-evil@example.com,failed,role,"), "{csv}");

    // The caller invites the valid ones; the store may still say "taken".
    let mut real = Report::default();
    real.push(Entry::invited(&valid[0]));
    real.push(Entry::exists(&valid[1]));
    assert_eq!((real.counts.invited, real.counts.skipped), (1, 1));
    assert_eq!(valid[1].invite_request().role, "sales_rep");
}

#[test]
fn a_file_error_mid_stream_is_kept_in_the_report() {
    let limits = Limits {
        max_rows: 1,
        ..Limits::default()
    };
    let upload = "first name,last name,email,role,profile\nA,B,a@example.com,admin,Standard\nC,D,c@example.com,admin,Standard\n";
    let mut v = Validator::new(catalogue(), profiles(), &limits);
    let mut report = Report::default();
    for row in read_csv(upload.as_bytes(), &limits).unwrap() {
        match row {
            Ok(row) => report.push(Entry::from_check(&v.check(&row))),
            Err(e) => report.fail_file(&e),
        }
    }
    assert_eq!(report.counts.valid, 1);
    let f = report.file_error.as_ref().unwrap();
    assert_eq!(f.code, FileError::TooManyRows { max: 1 }.code());
}

#[test]
fn thousands_of_rows_stream_through() {
    let mut upload = String::from("first name,last name,email,role,profile\n");
    for i in 0..20_000 {
        upload.push_str(&format!("F{i},L{i},user{i}@example.com,admin,Standard\n"));
    }
    let limits = Limits::default();
    let mut v = Validator::new(catalogue(), profiles(), &limits);
    let mut n = 0;
    for row in read_csv(upload.as_bytes(), &limits).unwrap() {
        let row = row.unwrap();
        n += 1;
        assert_eq!(row.row, n + 1);
        assert!(matches!(v.check(&row), RowOutcome::Valid(_)));
    }
    assert_eq!(n, 20_000);
    assert_eq!(v.distinct_emails(), 20_000);
}

#[test]
fn the_pieces_can_move_between_threads() {
    fn send<T: Send>() {}
    send::<Validator<'static>>();
    send::<peak_bulk::Rows<std::io::Cursor<Vec<u8>>>>();
    send::<peak_bulk::Rows<std::fs::File>>();
    send::<Report>();
    send::<peak_bulk::ReportWriter<Vec<u8>>>();
}
