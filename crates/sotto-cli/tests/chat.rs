//! `sotto chat` as a person runs it: the real binary, the real local model, and an
//! OpenAI-compatible server on this machine (as Ollama or LM Studio would be).

// An integration test's helpers panic on failure by design (clippy.toml allows it only
// inside test functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};

fn sotto(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sotto"))
        .args(args)
        // No keychain here: keys come from the environment or not at all.
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .output()
        .expect("sotto runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_local_model_answers_on_stdout_with_timings_on_stderr() {
    let out = sotto(&[
        "chat",
        "What is the capital of France?",
        "--temperature",
        "0",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("Paris"), "{stdout}");
    assert!(stderr.contains("[local: Stop"), "{stderr}");
    assert!(stderr.contains("first token"), "{stderr}");
}

#[test]
fn a_local_openai_compatible_server_streams_to_stdout() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().expect("accept");
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        // Read until the JSON body is complete (it ends with `}`).
        while !request.ends_with(b"}") {
            let n = socket.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        let chunk = |text: &str| {
            format!(
                "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}},\"finish_reason\":null}}]}}\n\n"
            )
        };
        let body = [
            chunk("Bonjour"),
            chunk(" from"),
            chunk(" Ollama."),
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3}}\n\n".into(),
            "data: [DONE]\n\n".into(),
        ]
        .concat();
        write!(
            socket,
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("write");
        String::from_utf8_lossy(&request).into_owned()
    });
    let base = format!("http://127.0.0.1:{port}/v1");
    let out = sotto(&[
        "chat",
        "Say hello",
        "--provider",
        "ollama",
        "--base-url",
        &base,
        "--model",
        "llama3.2:1b",
    ]);
    let request = server.join().expect("server");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "Bonjour from Ollama.");
    assert!(
        text(&out.stderr).contains("[Ollama: Stop, 3 tokens"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        request.starts_with("POST /v1/chat/completions"),
        "{request}"
    );
    assert!(request.contains("\"model\":\"llama3.2:1b\""), "{request}");
}

#[test]
fn mistakes_get_messages_that_say_what_to_do() {
    let out = sotto(&["chat", "Hi", "--provider", "nope"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("known: local, openai"),
        "{}",
        text(&out.stderr)
    );

    let out = sotto(&["chat", "Hi", "--provider", "openai", "--offline"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("offline mode is on"),
        "{}",
        text(&out.stderr)
    );

    let out = Command::new(env!("CARGO_BIN_EXE_sotto"))
        .args(["chat", "Hi", "--provider", "anthropic"])
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env_remove("ANTHROPIC_API_KEY")
        .output()
        .expect("sotto runs");
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Anthropic needs an API key"), "{stderr}");
    assert!(stderr.contains("keychain is not available"), "{stderr}");
}
