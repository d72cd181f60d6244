//! Lambda `user-invite`: invite one user (Idempotency-Key honoured).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("user-invite").await
}
