//! A fault-injecting HTTP proxy on loopback, in front of DynamoDB Local or
//! moto's SES v2 (issue 18, "Faults while draining"). Each request, at the
//! rates set, is answered with the service's own throttling error, a 500,
//! delayed, or its connection reset; otherwise it is forwarded unchanged.
//! Everything injected is counted ([`FaultCounts`]).
//!
//! The error shapes are the ones the AWS SDK parses:
//! - DynamoDB (awsJson1_0): HTTP 400 with
//!   `{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException",…}`
//!   (or `#ProvisionedThroughputExceededException`, alternately): the SDK
//!   reads the code after `#` and its retry classifier treats both as
//!   throttling; 500 is `#InternalServerError`.
//! - SES v2 (restJson1): HTTP 429 with `x-amzn-ErrorType:
//!   TooManyRequestsException` and `{"message":…}`, the modelled
//!   `TooManyRequestsException`; 500 is `InternalFailure`.
//!
//! Every fault is decided **before** the request is forwarded, so a faulted
//! request never reached the service (as a throttle, and most resets, do
//! not): a retry is never a second application. Latency is added before
//! forwarding.
//!
//! One request per client connection: the request is read whole (the SDK
//! always sends `Content-Length`), forwarded on a fresh connection with
//! `Connection: close`, the response read to its end and returned with
//! `Connection: close`, so no response framing has to be parsed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The service behind the proxy: which error shapes it answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    DynamoDb,
    Ses,
}

/// Per-request probabilities (0.0–1.0) of each fault. They are tried in
/// this order on one random draw, so they add up (at most 1.0).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultRates {
    /// The service's throttling error.
    pub throttle: f64,
    /// HTTP 500 (the service's internal error).
    pub server_error: f64,
    /// The connection reset (RST) after the request was read.
    pub reset: f64,
    /// Forwarded after [`FaultRates::latency_ms`].
    pub latency: f64,
    pub latency_ms: u64,
}

impl FaultRates {
    pub const NONE: FaultRates = FaultRates {
        throttle: 0.0,
        server_error: 0.0,
        reset: 0.0,
        latency: 0.0,
        latency_ms: 0,
    };

    /// Parses `throttle=0.05,500=0.02,reset=0.02,latency=0.05,latency_ms=200`
    /// (the benchmarks' command-line form); unknown keys are an error.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut r = FaultRates::NONE;
        for part in spec.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("fault `{part}`: expected key=value"))?;
            let f = || {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| (0.0..=1.0).contains(x))
                    .ok_or_else(|| format!("fault `{part}`: a rate from 0 to 1"))
            };
            match k {
                "throttle" => r.throttle = f()?,
                "500" | "server_error" => r.server_error = f()?,
                "reset" => r.reset = f()?,
                "latency" => r.latency = f()?,
                "latency_ms" => {
                    r.latency_ms = v
                        .parse()
                        .map_err(|_| format!("fault `{part}`: milliseconds"))?
                }
                _ => return Err(format!("fault `{part}`: unknown kind {k}")),
            }
        }
        if r.throttle + r.server_error + r.reset + r.latency > 1.0 {
            return Err("fault rates add up to more than 1".into());
        }
        Ok(r)
    }
}

/// What the proxy did, request by request.
#[derive(Debug, Default)]
pub struct FaultCounts {
    pub requests: AtomicU64,
    pub forwarded: AtomicU64,
    pub throttled: AtomicU64,
    pub server_errors: AtomicU64,
    pub resets: AtomicU64,
    pub delayed: AtomicU64,
    /// The upstream could not be reached or answered nothing (a 502).
    pub upstream_failures: AtomicU64,
    /// Items DynamoDB read for the forwarded Queries and Scans: the sum of
    /// their responses' `ScannedCount` (what a request is billed for).
    pub scanned: AtomicU64,
}

/// A snapshot of [`FaultCounts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counted {
    pub requests: u64,
    pub forwarded: u64,
    pub throttled: u64,
    pub server_errors: u64,
    pub resets: u64,
    pub delayed: u64,
    pub upstream_failures: u64,
    pub scanned: u64,
}

impl Counted {
    /// Requests answered with an error or reset (latency is not a failure).
    pub fn failed(&self) -> u64 {
        self.throttled + self.server_errors + self.resets
    }
}

impl std::fmt::Display for Counted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests: {} forwarded ({} delayed), {} throttled, {} 500s, {} resets, {} upstream failures",
            self.requests,
            self.forwarded,
            self.delayed,
            self.throttled,
            self.server_errors,
            self.resets,
            self.upstream_failures
        )
    }
}

pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`: the endpoint to give the SDK client.
    pub url: String,
    rates: Arc<Mutex<FaultRates>>,
    counts: Arc<FaultCounts>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://host:port`, plain HTTP only).
    pub async fn start(service: Service, upstream: &str, rates: FaultRates) -> Self {
        let upstream = upstream
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("the proxy speaks plain HTTP only, not {upstream}"))
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let rates = Arc::new(Mutex::new(rates));
        let counts = Arc::new(FaultCounts::default());
        let draws = Arc::new(AtomicU64::new(0));
        let task = {
            let (rates, counts) = (rates.clone(), counts.clone());
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let (rates, counts, draws) = (rates.clone(), counts.clone(), draws.clone());
                    let upstream = upstream.clone();
                    tokio::spawn(async move {
                        let r = *rates.lock().expect("rates");
                        let draw = uniform(draws.fetch_add(1, Ordering::Relaxed));
                        let _ = serve(service, &upstream, client, r, draw, &counts).await;
                    });
                }
            })
        };
        Self {
            url,
            rates,
            counts,
            task,
        }
    }

    pub fn set_rates(&self, rates: FaultRates) {
        *self.rates.lock().expect("rates") = rates;
    }

    pub fn counts(&self) -> Counted {
        let c = &self.counts;
        let l = |a: &AtomicU64| a.load(Ordering::SeqCst);
        Counted {
            requests: l(&c.requests),
            forwarded: l(&c.forwarded),
            throttled: l(&c.throttled),
            server_errors: l(&c.server_errors),
            resets: l(&c.resets),
            delayed: l(&c.delayed),
            upstream_failures: l(&c.upstream_failures),
            scanned: l(&c.scanned),
        }
    }
}

/// A uniform draw in [0, 1) from the request's sequence number
/// (SplitMix64 over a per-process seed).
fn uniform(n: u64) -> f64 {
    static SEED: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| {
        use std::hash::{BuildHasher, RandomState};
        RandomState::new().hash_one(0u8)
    });
    let mut z = SEED.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

const MAX_REQUEST: usize = 32 * 1024 * 1024;

async fn serve(
    service: Service,
    upstream: &str,
    mut client: TcpStream,
    r: FaultRates,
    draw: f64,
    counts: &FaultCounts,
) -> std::io::Result<()> {
    let Some(request) = read_request(&mut client).await? else {
        return Ok(());
    };
    counts.requests.fetch_add(1, Ordering::SeqCst);
    let mut edge = r.throttle;
    if draw < edge {
        counts.throttled.fetch_add(1, Ordering::SeqCst);
        let answer = throttled(service, draw < r.throttle / 2.0);
        return reply(&mut client, &answer).await;
    }
    edge += r.server_error;
    if draw < edge {
        counts.server_errors.fetch_add(1, Ordering::SeqCst);
        return reply(&mut client, &server_error(service)).await;
    }
    edge += r.reset;
    if draw < edge {
        counts.resets.fetch_add(1, Ordering::SeqCst);
        // SO_LINGER 0: closing sends RST, not FIN.
        client.set_zero_linger()?;
        drop(client);
        return Ok(());
    }
    edge += r.latency;
    if draw < edge {
        counts.delayed.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(r.latency_ms)).await;
    }
    counts.forwarded.fetch_add(1, Ordering::SeqCst);
    let response = match forward(upstream, &request).await {
        Ok(resp) if !resp.is_empty() => {
            if service == Service::DynamoDb {
                counts
                    .scanned
                    .fetch_add(scanned_count(&resp), Ordering::SeqCst);
            }
            resp
        }
        _ => {
            counts.upstream_failures.fetch_add(1, Ordering::SeqCst);
            response(502, "Bad Gateway", &[], b"")
        }
    };
    reply(&mut client, &with_connection_close(&response)).await
}

async fn reply(client: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    client.write_all(bytes).await?;
    client.shutdown().await
}

/// The request (head with `Connection: close`, then the body), or `None`
/// when the client closed without sending one.
async fn read_request(client: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REQUEST {
            return Err(std::io::Error::other("request head too large"));
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = header(&head, "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    if header(&head, "transfer-encoding").is_some() {
        return Err(std::io::Error::other("chunked requests are not supported"));
    }
    while buf.len() < head_end + length {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other("request body cut short"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut out = with_connection_close(&buf[..head_end]);
    out.extend_from_slice(&buf[head_end..head_end + length]);
    Ok(Some(out))
}

async fn forward(upstream: &str, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(request).await?;
    let mut response = Vec::new();
    server.read_to_end(&mut response).await?;
    Ok(response)
}

/// The message with its `Connection`/`Keep-Alive` headers replaced by
/// `Connection: close` (head only when there is no body yet).
fn with_connection_close(message: &[u8]) -> Vec<u8> {
    let Some(end) = find(message, b"\r\n\r\n") else {
        return message.to_vec();
    };
    let head = String::from_utf8_lossy(&message[..end]);
    let mut out = String::new();
    for line in head.split("\r\n") {
        let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
        if name != "connection" && name != "keep-alive" {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&message[end + 4..]);
    bytes
}

/// `"ScannedCount":N` of a Query or Scan response (0 for other calls).
fn scanned_count(response: &[u8]) -> u64 {
    const KEY: &[u8] = b"\"ScannedCount\":";
    let Some(i) = find(response, KEY) else {
        return 0;
    };
    response[i + KEY.len()..]
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take_while(|b| b.is_ascii_digit())
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn response(status: u16, reason: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "x-amzn-RequestId: fault-proxy\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

const DYNAMODB_JSON: (&str, &str) = ("Content-Type", "application/x-amz-json-1.0");

fn throttled(service: Service, provisioned: bool) -> Vec<u8> {
    match service {
        Service::DynamoDb => {
            let code = if provisioned {
                "ProvisionedThroughputExceededException"
            } else {
                "ThrottlingException"
            };
            let body = format!(
                r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"Throughput exceeds the current capacity of your table or index. (injected by the fault proxy)"}}"#
            );
            response(400, "Bad Request", &[DYNAMODB_JSON], body.as_bytes())
        }
        Service::Ses => response(
            429,
            "Too Many Requests",
            &[
                ("Content-Type", "application/json"),
                ("x-amzn-ErrorType", "TooManyRequestsException"),
            ],
            br#"{"message":"Maximum sending rate exceeded. (injected by the fault proxy)"}"#,
        ),
    }
}

fn server_error(service: Service) -> Vec<u8> {
    match service {
        Service::DynamoDb => response(
            500,
            "Internal Server Error",
            &[DYNAMODB_JSON],
            br#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error (injected by the fault proxy)"}"#,
        ),
        Service::Ses => response(
            500,
            "Internal Server Error",
            &[
                ("Content-Type", "application/json"),
                ("x-amzn-ErrorType", "InternalFailure"),
            ],
            br#"{"message":"Internal failure (injected by the fault proxy)"}"#,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_refuse_nonsense() {
        let r = FaultRates::parse("throttle=0.05,500=0.02,reset=0.01,latency=0.1,latency_ms=200")
            .unwrap();
        assert_eq!(r.throttle, 0.05);
        assert_eq!(r.server_error, 0.02);
        assert_eq!(r.latency_ms, 200);
        assert!(FaultRates::parse("throttle=2").is_err());
        assert!(FaultRates::parse("boom=0.1").is_err());
        assert!(FaultRates::parse("throttle=0.6,reset=0.6").is_err());
    }

    #[test]
    fn draws_are_spread_over_the_unit_interval() {
        let below: usize = (0..10_000).filter(|n| uniform(*n) < 0.1).count();
        assert!((800..1200).contains(&below), "{below}");
    }

    #[test]
    fn scanned_count_is_read_from_a_query_response() {
        let r = b"HTTP/1.1 200 OK\r\n\r\n{\"Count\":2,\"Items\":[],\"ScannedCount\": 100}";
        assert_eq!(scanned_count(r), 100);
        assert_eq!(scanned_count(b"HTTP/1.1 200 OK\r\n\r\n{}"), 0);
    }

    #[test]
    fn connection_close_replaces_keep_alive() {
        let out = with_connection_close(
            b"POST / HTTP/1.1\r\nHost: x\r\nconnection: keep-alive\r\n\r\nbody",
        );
        assert_eq!(
            out,
            b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nbody"
        );
    }
}
