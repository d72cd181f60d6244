//! The S3 file store (bulk-invite uploads) against moto's S3, the same moto
//! server scripts/test.sh starts for SES (`SES_ENDPOINT`).

use crate::files::S3Files;
use peak_domain::ports::FileStore;

async fn store() -> S3Files {
    let Ok(endpoint) = std::env::var("SES_ENDPOINT") else {
        panic!(
            "moto is not running: run the tests with scripts/test.sh, or start it with \
             `scripts/moto.sh start` and export the SES_ENDPOINT it prints"
        );
    };
    assert!(
        endpoint.starts_with("http://127.0.0.1:"),
        "loopback only, not {endpoint}"
    );
    // SAFETY: set before any other thread of this test reads the environment.
    unsafe {
        std::env::set_var("S3_ENDPOINT", &endpoint);
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        std::env::set_var("AWS_REGION", "us-east-1");
    }
    let bucket = format!("bulk-{}", ulid::Ulid::new().to_string().to_lowercase());
    let files = S3Files::from_env(bucket);
    files.create_bucket().await.expect("create bucket in moto");
    files
}

#[tokio::test]
async fn files_round_trip_and_presigned_puts_land_in_the_bucket() {
    let files = store().await;
    assert_eq!(files.get_file("bulk/acme/missing").await.unwrap(), None);
    files
        .put_file("bulk/acme/a", b"First name\nAda\n".to_vec())
        .await
        .unwrap();
    assert_eq!(
        files.get_file("bulk/acme/a").await.unwrap().as_deref(),
        Some(&b"First name\nAda\n"[..])
    );

    // A client PUTs a large file straight to the bucket.
    let url = files
        .upload_url("bulk/acme/uploads/u1", 900)
        .await
        .unwrap()
        .expect("S3 gives upload URLs");
    assert!(url.contains("X-Amz-Signature="), "presigned: {url}");
    let big = vec![b'x'; 3 * 1024 * 1024];
    let resp = reqwest::Client::new()
        .put(&url)
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(
        files
            .get_file("bulk/acme/uploads/u1")
            .await
            .unwrap()
            .map(|b| b.len()),
        Some(big.len())
    );
    // (moto does not check presigned signatures, so a tampered URL cannot
    // be shown to fail here; S3 refuses it. The signatures are checked
    // against AWS's published examples in files.rs.)

    // Keys are percent-encoded on the way.
    let odd = "bulk/acme/uploads/Staff list (v2) é+.csv";
    files.put_file(odd, b"x".to_vec()).await.unwrap();
    assert_eq!(
        files.get_file(odd).await.unwrap().as_deref(),
        Some(&b"x"[..])
    );
}

#[tokio::test]
async fn a_missing_bucket_is_an_error_not_a_missing_file() {
    let files = store().await;
    let gone = S3Files::from_env(format!(
        "{}-gone",
        ulid::Ulid::new().to_string().to_lowercase()
    ));
    let err = gone.get_file("bulk/acme/a").await.unwrap_err();
    assert!(err.to_string().contains("NoSuchBucket"), "{err}");
    assert_eq!(files.get_file("bulk/acme/a").await.unwrap(), None);
}
