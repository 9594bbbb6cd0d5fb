//! `sotto converse` as a person runs it: two spoken questions, two answered turns, every
//! event a JSON object with a `type`, the answers in one WAV file; and history that a
//! crash in the middle of a turn does not lose.

// An integration test's helpers panic on failure by design (clippy.toml allows it only
// inside test functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use sotto_core::{TurnOutcome, TurnRecord};
use sotto_store::Store;

/// Speaks `text` into `dir/name` with a voice other than the assistant's.
fn ask(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name).display().to_string();
    let out = sotto(
        &[
            "say",
            text,
            "--voice",
            "kokoro-82m-int8/am_michael",
            "--out",
            &path,
        ],
        dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn sotto(args: &[&str], cache: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sotto"))
        .args(args)
        .env("SOTTO_CACHE_DIR", cache)
        .output()
        .expect("sotto runs")
}

#[test]
fn converse_answers_each_question_in_turn_and_logs_typed_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = |name: &str| dir.path().join(name).display().to_string();
    ask(dir.path(), "q1.wav", "What is the capital of France?");
    ask(dir.path(), "q2.wav", "What color is the sky?");
    let out = sotto(
        &[
            "converse",
            &path("q1.wav"),
            &path("q2.wav"),
            "--out",
            &path("replies.wav"),
            "--events",
            &path("events.jsonl"),
        ],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("[2 of 2 questions answered]"), "{stderr}");

    let log = std::fs::read_to_string(path("events.jsonl")).expect("events");
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert!(events.iter().all(|e| e["type"].is_string()));
    let finished: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["type"] == "turn_finished" && e["outcome"] == "answered")
        .collect();
    assert_eq!(finished.len(), 2, "{log}");
    assert!(finished[0]["user_text"]
        .as_str()
        .is_some_and(|t| t.contains("France")));
    assert!(finished[1]["user_text"]
        .as_str()
        .is_some_and(|t| t.contains("sky")));
    assert!(finished
        .iter()
        .all(|f| f["timings"]["v2v_ms"].as_f64().is_some_and(|v| v > 0.0)));

    let replies = sotto_audio::wav::read(Path::new(&path("replies.wav"))).expect("replies");
    let seconds = replies.samples.len() as f64 / f64::from(replies.sample_rate);
    assert!(seconds > 2.0, "{seconds} s of answers");
}

#[test]
fn a_crash_in_the_middle_of_a_turn_keeps_every_earlier_turn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = |name: &str| dir.path().join(name).display().to_string();
    let questions = [
        ask(dir.path(), "q1.wav", "What is the capital of France?"),
        ask(dir.path(), "q2.wav", "What color is the sky?"),
        ask(dir.path(), "q3.wav", "Name a large animal."),
    ];
    let history = dir.path().join("history");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sotto"))
        .args(["converse", &questions[0], &questions[1], &questions[2]])
        .args([
            "--out",
            &path("replies.wav"),
            "--events",
            &path("events.jsonl"),
        ])
        .args(["--history", &history.display().to_string()])
        .args(["--turn-logs", &path("logs")])
        .env("SOTTO_CACHE_DIR", dir.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sotto runs");
    // Kill it (SIGKILL: no cleanup at all) once the third question has been understood
    // and the answer is under way.
    let started = Instant::now();
    loop {
        let log = std::fs::read_to_string(path("events.jsonl")).unwrap_or_default();
        let finals = log.matches(r#""type":"transcript_final""#).count();
        if finals >= 3 {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("sotto ended before the third question ({status}):\n{log}");
        }
        assert!(started.elapsed() < Duration::from_secs(180), "{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill -9");
    let _ = child.wait();

    // Restart: the next run keeps working with the same history.
    let out = sotto(
        &[
            "run",
            "--input",
            &questions[2],
            "--out",
            &path("reply.wav"),
            "--events",
            &path("events2.jsonl"),
            "--history",
            &history.display().to_string(),
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let opened = Store::open(&history).expect("history opens");
    assert!(opened.moved_aside.is_none(), "the crash damaged nothing");
    let store = opened.store;
    let conversations = store.conversations().expect("list");
    assert_eq!(conversations.len(), 2, "{conversations:?}");
    let (restarted, crashed) = (&conversations[0], &conversations[1]);
    assert!(crashed.title.contains("France"), "{crashed:?}");
    let turns: Vec<TurnRecord> = store.turns(crashed.id).expect("turns");
    assert_eq!(turns.len(), 2, "both turns before the crash: {turns:?}");
    // Words, not their case: a streamed transcript may capitalise differently.
    let said = |turn: &TurnRecord, word: &str| turn.user_text.to_lowercase().contains(word);
    assert!(said(&turns[0], "france") && said(&turns[1], "sky"));
    for turn in &turns {
        assert_eq!(turn.outcome, TurnOutcome::Answered);
        assert!(!turn.heard_text.is_empty() && !turn.answer_text.is_empty());
        assert!(turn.timings.v2v_ms.is_some_and(|v| v > 0.0), "{turn:?}");
    }
    let after: Vec<TurnRecord> = store.turns(restarted.id).expect("turns");
    assert_eq!(after.len(), 1);
    assert!(said(&after[0], "animal"), "{after:?}");

    // The turn logs of the finished turns: what was heard, what was said, the record.
    let logs = sotto_store::turn_log::TurnLogs::new(dir.path().join("logs"), 50).list();
    assert_eq!(logs.len(), 2, "{logs:?}");
    for folder in &logs {
        let heard = sotto_audio::wav::read(&folder.join("input.wav")).expect("input.wav");
        assert!(
            heard.samples.len() > 16_000,
            "over a second of the question"
        );
        let said = sotto_audio::wav::read(&folder.join("output.wav")).expect("output.wav");
        assert!(said.samples.len() > said.sample_rate as usize / 2);
        let record: TurnRecord =
            serde_json::from_slice(&std::fs::read(folder.join("turn.json")).expect("turn.json"))
                .expect("a turn record");
        assert!(!record.user_text.is_empty());
    }
}
