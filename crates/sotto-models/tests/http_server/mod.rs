//! A small HTTP/1.1 file server on loopback for the fetch tests: it honours Range
//! requests, can cut a response short (a dropped connection), answer an error status,
//! and records what it was asked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// How the server answers one path.
#[derive(Clone)]
pub enum Route {
    /// Serve these bytes (honouring Range).
    Bytes(Vec<u8>),
    /// Serve these bytes but close the connection after `cut` bytes of the body.
    CutAfter(Vec<u8>, usize),
    /// Answer this status with an empty body.
    Status(u16),
}

/// One request the server saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub range: Option<String>,
}

pub struct Server {
    pub base: String,
    routes: Arc<Mutex<HashMap<String, Route>>>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    pub async fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let routes: Arc<Mutex<HashMap<String, Route>>> = Arc::default();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (r, s) = (routes.clone(), seen.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (r, s) = (r.clone(), s.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, r, s).await;
                });
            }
        });
        Server { base, routes, seen }
    }

    pub fn route(&self, path: &str, route: Route) -> String {
        self.routes.lock().unwrap().insert(path.to_string(), route);
        format!("{}{path}", self.base)
    }

    pub fn requests(&self, path: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }
}

async fn serve(
    stream: tokio::net::TcpStream,
    routes: Arc<Mutex<HashMap<String, Route>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    loop {
        let mut request_line = String::new();
        if lines.read_line(&mut request_line).await? == 0 {
            return Ok(());
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_string();
        let mut range = None;
        loop {
            let mut header = String::new();
            lines.read_line(&mut header).await?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("range") {
                    range = Some(value.trim().to_string());
                }
            }
        }
        seen.lock().unwrap().push(Seen {
            path: path.clone(),
            range: range.clone(),
        });
        let route = routes
            .lock()
            .unwrap()
            .get(&path)
            .cloned()
            .unwrap_or(Route::Status(404));
        let (body, cut) = match route {
            Route::Status(code) => {
                let head = format!("HTTP/1.1 {code} Nope\r\ncontent-length: 0\r\n\r\n");
                write.write_all(head.as_bytes()).await?;
                continue;
            }
            Route::Bytes(b) => (b, None),
            Route::CutAfter(b, n) => (b, Some(n)),
        };
        let start = range
            .as_deref()
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
        let (status, from) = match start {
            Some(s) if s >= body.len() => {
                write
                    .write_all(b"HTTP/1.1 416 Range Not Satisfiable\r\ncontent-length: 0\r\n\r\n")
                    .await?;
                continue;
            }
            Some(s) => ("206 Partial Content", s),
            None => ("200 OK", 0),
        };
        let rest = &body[from..];
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\naccept-ranges: bytes\r\n\r\n",
            rest.len()
        );
        write.write_all(head.as_bytes()).await?;
        match cut {
            Some(n) => {
                write.write_all(&rest[..n.min(rest.len())]).await?;
                write.flush().await?;
                return Ok(()); // drop the connection mid-body
            }
            None => write.write_all(rest).await?,
        }
    }
}
