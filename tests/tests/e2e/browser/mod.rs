//! What a person clicks, in a real browser: Debian's chromium, driven
//! through Debian's chromedriver (WebDriver) with `fantoccini`, against the
//! local server started as the other end-to-end tests start it.
//!
//! Every scenario runs twice, on a desktop window and on a 360 px wide
//! phone screen. Each page a scenario passes is photographed to
//! `target/browser-screenshots/<scenario>-<width>/NN-<page>.png`; a failing
//! step photographs the page it failed on and names that file in its
//! message. One browser runs at a time (the machine has two cores).
//!
//! Nothing is downloaded at run time: chromium and chromedriver come from
//! Debian's packages, which `scripts/test.sh` installs when missing. If
//! they are missing anyway, the tests fail saying what to install.

mod flows;
mod mailbox;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long a page may take to show what a step expects.
const PATIENCE: Duration = Duration::from_secs(15);

/// The two screens every scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Desktop,
    Phone,
}

impl Screen {
    pub fn width(self) -> u32 {
        match self {
            Screen::Desktop => 1280,
            Screen::Phone => 360,
        }
    }
}

/// One browser at a time, across the test binary's threads.
static ONE_AT_A_TIME: LazyLock<tokio::sync::Mutex<()>> =
    LazyLock::new(|| tokio::sync::Mutex::new(()));

/// A chromedriver process of our own, stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
    _profile: TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh, empty folder, removed when dropped (chromium's profile).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn start_driver() -> Driver {
    for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: the browser tests need Debian's chromium and chromedriver. \
             Install them with `apt-get install chromium chromium-driver` (package {package}); \
             scripts/test.sh does this when they are missing"
        );
    }
    let port = free_port();
    let profile = std::env::temp_dir().join(format!("peak-chromium-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&profile).expect("chromium profile folder");
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
    Driver {
        child,
        port,
        _profile: TempDir(profile),
    }
}

/// Chromium as root on a machine without network: no sandbox, no GPU, and
/// none of its own background connections.
fn capabilities(screen: Screen, profile: &Path) -> serde_json::Map<String, Value> {
    let mut args = vec![
        "--headless".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-quic".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        format!("--user-data-dir={}", profile.display()),
    ];
    let mut options = json!({ "binary": CHROMIUM });
    match screen {
        Screen::Desktop => args.push("--window-size=1280,900".to_owned()),
        Screen::Phone => {
            options["mobileEmulation"] = json!({
                "deviceMetrics": { "width": 360, "height": 780, "pixelRatio": 1.0, "touch": true }
            });
        }
    }
    options["args"] = json!(args);
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert("goog:chromeOptions".into(), options);
    caps
}

/// A browser window for one scenario on one screen.
pub struct Browser {
    pub client: Client,
    pub screen: Screen,
    shots: PathBuf,
    taken: std::sync::atomic::AtomicUsize,
}

impl Browser {
    /// Photographs the page as `NN-<name>.png`; returns the file.
    pub async fn shot(&self, name: &str) -> PathBuf {
        let n = self
            .taken
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = self.shots.join(format!("{n:02}-{name}.png"));
        match self.client.screenshot().await {
            Ok(png) => {
                if let Err(e) = std::fs::write(&path, png) {
                    eprintln!("cannot write {}: {e}", path.display());
                }
            }
            Err(e) => eprintln!("no screenshot for {}: {e}", path.display()),
        }
        path
    }

    /// Fails the step, naming a screenshot of the page it failed on.
    pub async fn fail(&self, what: &str) -> ! {
        let shot = self.shot("FAILED").await;
        // Without the fragment: the portal page carries a token there.
        let url = self
            .client
            .current_url()
            .await
            .map(|mut u| {
                u.set_fragment(None);
                u.to_string()
            })
            .unwrap_or_default();
        panic!(
            "{what}\n  on {url} ({:?}, {} px wide)\n  screenshot: {}",
            self.screen,
            self.screen.width(),
            shot.display()
        );
    }

    pub async fn goto(&self, url: &str) {
        if let Err(e) = self.client.goto(url).await {
            self.fail(&format!("could not open {url}: {e}")).await;
        }
    }

    /// The page's main heading.
    pub async fn heading(&self) -> String {
        match self.client.find(Locator::Css("h1")).await {
            Ok(h) => h.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits until the page's heading contains `text`, then checks that the
    /// page fits the screen (no sideways scrolling) and photographs it.
    pub async fn expect_page(&self, text: &str, shot: &str) {
        let started = Instant::now();
        loop {
            if self.heading().await.contains(text) {
                break;
            }
            if started.elapsed() > PATIENCE {
                let seen = self.heading().await;
                self.fail(&format!(
                    "expected a page headed \"{text}\", but the heading is \"{seen}\""
                ))
                .await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let fits = self
            .client
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth",
                vec![],
            )
            .await;
        if fits.ok().and_then(|v| v.as_bool()) != Some(true) {
            self.fail(&format!(
                "the page \"{text}\" is wider than the screen: it scrolls sideways"
            ))
            .await;
        }
        self.shot(shot).await;
    }

    /// The visible text of the page's main content.
    pub async fn main_text(&self) -> String {
        match self.client.find(Locator::Css("main")).await {
            Ok(m) => m.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Fails unless the page's main content says `text`.
    pub async fn expect_text(&self, text: &str) {
        let main = self.main_text().await;
        if !main.contains(text) {
            self.fail(&format!(
                "expected the page to say \"{text}\"; it says:\n{main}"
            ))
            .await;
        }
    }

    /// Clicks the link or button whose text is `label` (links first).
    pub async fn click(&self, label: &str) {
        let link = self.client.find(Locator::LinkText(label)).await;
        let target = match link {
            Ok(l) => Ok(l),
            Err(_) => {
                let xpath = format!("//button[normalize-space(.)='{label}']");
                self.client.find(Locator::XPath(&xpath)).await
            }
        };
        match target {
            Ok(t) => {
                if let Err(e) = t.click().await {
                    self.fail(&format!("could not click \"{label}\": {e}"))
                        .await;
                }
            }
            Err(_) => self.fail(&format!("no link or button \"{label}\"")).await,
        }
    }

    /// Types `text` into the field labelled `label`, as a person finds it:
    /// by its label.
    pub async fn fill(&self, label: &str, text: &str) {
        let xpath = format!("//label[normalize-space(.)='{label}']");
        let Ok(l) = self.client.find(Locator::XPath(&xpath)).await else {
            self.fail(&format!("no field labelled \"{label}\"")).await
        };
        let id = l.attr("for").await.ok().flatten().unwrap_or_default();
        let Ok(field) = self.client.find(Locator::Id(&id)).await else {
            self.fail(&format!("the label \"{label}\" names no field"))
                .await
        };
        let _ = field.clear().await;
        if let Err(e) = field.send_keys(text).await {
            self.fail(&format!("could not type into \"{label}\": {e}"))
                .await;
        }
    }

    /// `document.referrer` of the page shown.
    pub async fn referrer(&self) -> String {
        self.client
            .execute("return document.referrer", vec![])
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

fn screenshot_dir(scenario: &str, screen: Screen) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace");
    let dir = root
        .join("target/browser-screenshots")
        .join(format!("{scenario}-{}", screen.width()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

/// Runs `scenario` in a fresh browser on each screen, one browser at a
/// time; the browser is closed whatever happens.
pub async fn on_both_screens<F, Fut>(name: &str, scenario: F)
where
    F: Fn(Browser) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    for screen in [Screen::Desktop, Screen::Phone] {
        let _turn = ONE_AT_A_TIME.lock().await;
        let driver = start_driver();
        let url = format!("http://127.0.0.1:{}", driver.port);
        let caps = capabilities(screen, &driver._profile.0);
        let started = Instant::now();
        let client = loop {
            let mut builder =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
            match builder.capabilities(caps.clone()).connect(&url).await {
                Ok(c) => break c,
                Err(e) if started.elapsed() > PATIENCE => {
                    panic!("chromedriver on {url} did not start chromium: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        let browser = Browser {
            client: client.clone(),
            screen,
            shots: screenshot_dir(name, screen),
            taken: std::sync::atomic::AtomicUsize::new(0),
        };
        // Run on a task of its own so that a failing step still lets the
        // browser close before the failure is reported.
        let outcome = tokio::spawn(scenario(browser)).await;
        let _ = client.close().await;
        drop(driver);
        if let Err(e) = outcome {
            match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("{name} on {screen:?}: {e}"),
            }
        }
    }
}
