//! A loopback HTTP/1.1 server that plays scripted replies, byte for byte, the way a
//! provider's API would: chunked SSE streams, error statuses with headers, streams that
//! stall or break off. It records every request it receives.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One scripted reply.
#[derive(Debug, Clone)]
pub enum Reply {
    /// `200 OK` with `text/event-stream`, the chunks written one by one with a pause
    /// before each, then the stream's `end`.
    Sse {
        /// (pause before, bytes) pairs.
        chunks: Vec<(Duration, String)>,
        /// How the stream ends.
        end: End,
    },
    /// An error status with extra headers and a JSON body.
    Status {
        /// HTTP status code.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// The body.
        body: String,
    },
    /// The request is read and never answered, not even with headers (a hung server).
    Silent,
}

/// How a scripted SSE stream ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The final zero-length chunk, as a server that finished cleanly sends.
    Complete,
    /// The connection closes without the final chunk (a crashed upstream).
    BreakOff,
    /// Nothing more is sent and the connection stays open (a hung upstream).
    Stall,
}

impl Reply {
    /// An SSE stream of `events` (each a complete `data: ...\n\n` block), sent without
    /// pauses and ended cleanly.
    pub fn sse(events: &[String]) -> Reply {
        Reply::Sse {
            chunks: events.iter().map(|e| (Duration::ZERO, e.clone())).collect(),
            end: End::Complete,
        }
    }

    /// An error status with a provider-style JSON error body.
    pub fn status(status: u16, message: &str) -> Reply {
        Reply::Status {
            status,
            headers: Vec::new(),
            body: serde_json::json!({"error": {"message": message, "type": "error"}}).to_string(),
        }
    }

    /// Adds a header to a status reply.
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Status { headers, .. } = &mut self {
            headers.push((name.to_string(), value.to_string()));
        }
        self
    }
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Method and path, e.g. `POST /v1/chat/completions`.
    pub request_line: String,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: serde_json::Value,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The running server. Requests get the scripted replies in order; once the script is
/// used up, every further request gets a 500.
pub struct ScriptedServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl ScriptedServer {
    /// Starts a server on a free loopback port.
    pub async fn start(script: Vec<Reply>) -> ScriptedServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.into_iter()));
        let log = Arc::clone(&received);
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (script, log) = (Arc::clone(&script), Arc::clone(&log));
                tokio::spawn(async move { serve(socket, script, log).await });
            }
        });
        ScriptedServer {
            url,
            received,
            _task: task,
        }
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("log").clone()
    }
}

type Script = Arc<Mutex<std::vec::IntoIter<Reply>>>;

async fn serve(mut socket: TcpStream, script: Script, log: Arc<Mutex<Vec<Received>>>) {
    // Several requests may come over one kept-alive connection.
    loop {
        let Some(request) = read_request(&mut socket).await else {
            return;
        };
        log.lock().expect("log").push(request);
        let reply = script
            .lock()
            .expect("script")
            .next()
            .unwrap_or_else(|| Reply::status(500, "the test script has no more replies"));
        match reply {
            Reply::Silent => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            Reply::Status {
                status,
                headers,
                body,
            } => {
                let mut head = format!(
                    "HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
                    body.len()
                );
                for (name, value) in headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                if socket.write_all(head.as_bytes()).await.is_err()
                    || socket.write_all(body.as_bytes()).await.is_err()
                {
                    return;
                }
            }
            Reply::Sse { chunks, end } => {
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for (pause, bytes) in chunks {
                    tokio::time::sleep(pause).await;
                    let chunk = format!("{:x}\r\n{bytes}\r\n", bytes.len());
                    if socket.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                    let _ = socket.flush().await;
                }
                match end {
                    End::Complete => {
                        if socket.write_all(b"0\r\n\r\n").await.is_err() {
                            return;
                        }
                    }
                    End::BreakOff => return,
                    End::Stall => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return;
                    }
                }
            }
        }
    }
}

/// Reads one request: head, then a body of `content-length` bytes.
async fn read_request(socket: &mut TcpStream) -> Option<Received> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let body = serde_json::from_slice(&data[head_end..head_end + length])
        .unwrap_or(serde_json::Value::Null);
    let (method, rest) = request_line.split_once(' ')?;
    let path = rest.rsplit_once(' ').map(|(p, _)| p).unwrap_or(rest);
    Some(Received {
        request_line: format!("{method} {path}"),
        headers,
        body,
    })
}
