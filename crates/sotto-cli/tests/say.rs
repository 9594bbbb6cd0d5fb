//! `sotto say` then `sotto transcribe`: the sentence comes back; a second `say` of the
//! same text comes from the speech cache; bad input gets a clear message.

// An integration test's helpers panic on failure by design (clippy.toml allows it only
// inside test functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

fn sotto(args: &[&str], cache: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sotto"))
        .args(args)
        .env("SOTTO_CACHE_DIR", cache)
        .output()
        .expect("sotto runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn say_then_transcribe_recovers_the_sentence_and_the_cache_answers_the_second_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wav = dir.path().join("said.wav");
    let wav = wav.to_str().expect("utf-8 path");
    let sentence = "Good morning! Your next meeting starts soon, so please bring your notes.";
    let out = sotto(&["say", sentence, "--out", wav], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("first audio after"),
        "{}",
        text(&out.stderr)
    );

    let out = sotto(&["transcribe", wav, "--json"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let heard = json["text"].as_str().expect("text");
    let wer = sotto_stt::word_error_rate(sentence, heard);
    assert!(wer <= 0.2, "WER {wer:.2}: {heard:?}");

    let again = dir.path().join("again.wav");
    let out = sotto(
        &["say", sentence, "--out", again.to_str().expect("path")],
        dir.path(),
    );
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("from the cache"),
        "{}",
        text(&out.stderr)
    );
    let first = std::fs::read(wav).expect("first");
    let second = std::fs::read(&again).expect("second");
    assert_eq!(first, second, "the cache gives back the same audio");
}

#[test]
fn bad_requests_say_what_is_wrong() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = sotto(&["say", "🎉 ``` ```"], dir.path());
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("nothing in that text can be spoken"));

    let out = sotto(&["say", "Hi", "--voice", "no-such-voice"], dir.path());
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("unknown model id"),
        "{}",
        text(&out.stderr)
    );

    let out = sotto(&["say", "Hi", "--speed", "9"], dir.path());
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--speed"));
}

#[test]
fn without_a_speaker_the_command_line_says_so_in_its_own_terms_without_alsa_noise() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = sotto(&["say", "Hello there."], dir.path());
    let stderr = text(&out.stderr);
    if out.status.success() {
        // A machine with a speaker played it: there is no error to read.
        return;
    }
    assert!(
        stderr.contains("no speaker or headphones found"),
        "{stderr}"
    );
    assert!(stderr.contains("--out FILE.wav"), "{stderr}");
    assert!(
        !stderr.contains("ALSA lib"),
        "the C library's noise: {stderr}"
    );
    assert!(
        !stderr.contains("Settings"),
        "window advice on the command line: {stderr}"
    );
}
