//! HTTP downloads into `.part` files that resume where they stopped.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{CONTENT_LENGTH, RANGE};
use reqwest::StatusCode;
use tokio::io::AsyncWriteExt;

/// Why one download failed.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The server answered with an error status.
    #[error("the server answered HTTP {0}")]
    Status(u16),
    /// The server could not be reached, or the connection broke or stalled.
    #[error("network error: {0}")]
    Network(String),
    /// Writing to disk failed (a full disk included).
    #[error("cannot write {path}: {source}")]
    Disk {
        /// The file being written.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// An HTTP client set up for large, resumable downloads.
#[derive(Clone)]
pub struct Downloader {
    client: reqwest::Client,
}

impl Downloader {
    /// A client with connect and stall timeouts; TLS through rustls on ring.
    pub fn new() -> Result<Downloader, String> {
        // Installing twice is harmless: the first provider stays.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(concat!("sotto/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(30))
            // Mirrors redirect to CDNs; never from https down to plain http.
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                let from_https = attempt
                    .previous()
                    .last()
                    .is_some_and(|url| url.scheme() == "https");
                if from_https && attempt.url().scheme() != "https" {
                    attempt.error("a redirect from https to plain http")
                } else if attempt.previous().len() > 10 {
                    attempt.stop()
                } else {
                    attempt.follow()
                }
            }))
            .build()
            .map_err(|e| format!("cannot set up HTTPS: {e}"))?;
        Ok(Downloader { client })
    }

    /// Downloads `url` into `part`, continuing from the bytes already there when the
    /// server supports ranges. `on_progress(done, total)` is called as bytes arrive.
    pub async fn download(
        &self,
        url: &str,
        part: &Path,
        on_progress: &mut (dyn FnMut(u64, Option<u64>) + Send),
    ) -> Result<(), DownloadError> {
        let disk = |source| DownloadError::Disk {
            path: part.display().to_string(),
            source,
        };
        let have = tokio::fs::metadata(part)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        let mut request = self.client.get(url);
        if have > 0 {
            request = request.header(RANGE, format!("bytes={have}-"));
        }
        let response = request.send().await.map_err(network)?;
        let status = response.status();
        let (mut done, append) = match status {
            StatusCode::PARTIAL_CONTENT => (have, true),
            StatusCode::OK => (0, false),
            // Everything is already here; the checksum decides whether it is right.
            StatusCode::RANGE_NOT_SATISFIABLE if have > 0 => return Ok(()),
            other => return Err(DownloadError::Status(other.as_u16())),
        };
        let total = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .map(|len| len + done);
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(part)
            .await
            .map_err(disk)?;
        on_progress(done, total);
        let streamed = stream_body(response, &mut file, part, &mut done, total, on_progress).await;
        // Always flush, on failure too: tokio finishes writes on a background thread, and a
        // resume must see every byte already received, or it asks for the wrong range
        // while the late write lands in the middle of the file.
        let flushed = file.flush().await;
        streamed?;
        flushed.map_err(disk)?;
        file.sync_all().await.map_err(disk)?;
        match total {
            Some(total) if done < total => Err(DownloadError::Network(format!(
                "the connection broke after {done} of {total} bytes"
            ))),
            _ => Ok(()),
        }
    }
}

/// Copies the response body into `file`, counting bytes into `done`.
async fn stream_body(
    response: reqwest::Response,
    file: &mut tokio::fs::File,
    part: &Path,
    done: &mut u64,
    total: Option<u64>,
    on_progress: &mut (dyn FnMut(u64, Option<u64>) + Send),
) -> Result<(), DownloadError> {
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            let of = total.map_or(String::new(), |t| format!(" of {t}"));
            DownloadError::Network(format!(
                "the connection broke after {done}{of} bytes ({})",
                network_text(&e)
            ))
        })?;
        file.write_all(&chunk)
            .await
            .map_err(|source| DownloadError::Disk {
                path: part.display().to_string(),
                source,
            })?;
        *done += chunk.len() as u64;
        on_progress(*done, total);
    }
    Ok(())
}

fn network(e: reqwest::Error) -> DownloadError {
    DownloadError::Network(network_text(&e))
}

/// reqwest's Display hides the cause ("error sending request"); the chain says why.
fn network_text(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
