//! The voice's memory over many sentences: resident memory after each of a few hundred
//! sentences of random length (up to the longest piece the splitter hands the voice),
//! with or without a warm-up at load (the longest piece spoken first). ONNX Runtime
//! keeps the memory it took for the largest tensors it met; this shows when that happens
//! and what it costs.

use std::time::Instant;

use sotto_models::ModelStore;
use sotto_tts::split::{longest_piece, SplitConfig};

/// Words the random sentences are made of.
const WORDS: [&str; 24] = [
    "the",
    "weather",
    "tomorrow",
    "looks",
    "sunny",
    "with",
    "a",
    "light",
    "breeze",
    "and",
    "temperatures",
    "around",
    "twenty",
    "degrees",
    "in",
    "afternoon",
    "so",
    "bring",
    "some",
    "water",
    "if",
    "you",
    "walk",
    "far",
];

/// A small deterministic generator (xorshift), so every run speaks the same sentences.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A sentence of about `len` bytes.
fn sentence(rng: &mut Rng, len: usize) -> String {
    let mut text = String::new();
    while text.len() + 12 < len {
        if !text.is_empty() {
            text.push(if rng.below(8) == 0 { ',' } else { ' ' });
            if text.ends_with(',') {
                text.push(' ');
            }
        }
        text.push_str(WORDS[rng.below(WORDS.len())]);
    }
    text.push('.');
    text
}

/// This process's resident memory in MiB (NaN if unknown).
fn rss_mib() -> f64 {
    crate::status_kib("self", "VmRSS").map_or(f64::NAN, |kib| kib as f64 / 1024.0)
}

/// `voice-memory [--voice ID] [--sentences N] [--warm-up]`.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut voice_id = sotto_models::default_model(sotto_models::ModelKind::Tts);
    let mut count = 200usize;
    let mut warm = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--voice" => voice_id = args.next().cloned().unwrap_or(voice_id),
            "--sentences" => {
                count = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| anyhow::anyhow!("--sentences takes a number"))?
            }
            "--warm-up" => warm = true,
            other => anyhow::bail!(
                "voice-memory takes --voice ID, --sentences N, --warm-up; not {other}"
            ),
        }
    }
    let split = SplitConfig::default();
    let longest = longest_piece(&split);
    let store = ModelStore::open_default()?;
    let mut voice = sotto_tts::load_voice(&store, &voice_id, 2)?;
    let loaded = rss_mib();
    let mut warm_ms = 0.0;
    if warm {
        let started = Instant::now();
        voice.synthesize_all(&longest, 1.0)?;
        warm_ms = started.elapsed().as_secs_f64() * 1000.0;
    }
    let after_warm = rss_mib();
    let max_len = split.max_len;
    let mut rng = Rng(0x5eed_1234_abcd);
    let (mut spent, mut spoken) = (0.0, 0.0);
    let mut samples = Vec::new();
    for i in 1..=count {
        let len = 20 + rng.below(max_len - 20);
        let text = if i == count / 2 {
            longest.clone()
        } else {
            sentence(&mut rng, len)
        };
        let started = Instant::now();
        let audio = voice.synthesize_all(&text, 1.0)?;
        spent += started.elapsed().as_secs_f64() * 1000.0;
        spoken += audio.duration_ms();
        sotto_core::heap::release_free_memory();
        std::thread::sleep(std::time::Duration::from_millis(30));
        if i % 25 == 0 || i == 1 || i == 10 {
            samples.push((i, rss_mib()));
        }
    }
    println!(
        "\n### Voice memory: {voice_id}, {count} sentences of 20-{max_len} bytes, warm-up {warm}\n"
    );
    println!("loaded {loaded:.1} MiB; after warm-up {after_warm:.1} MiB ({warm_ms:.0} ms); real-time factor {:.3}", spent / spoken);
    println!("| sentence | RSS (MiB) |\n|---|---|");
    for (i, rss) in &samples {
        println!("| {i} | {rss:.1} |");
    }
    Ok(())
}
