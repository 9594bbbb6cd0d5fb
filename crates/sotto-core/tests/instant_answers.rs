//! Instant answers with the real MiniLM model: questions that mean an intent's phrases
//! match it, others do not; the tokenizer agrees with BERT's.

// An integration test's helpers panic on failure by design (clippy.toml allows it only
// inside test functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sotto_core::embed::{similarity, Embedder, WordPiece};
use sotto_core::intents::{Intents, Matcher, DEFAULT_INTENTS};
use sotto_models::ModelStore;

fn store() -> ModelStore {
    ModelStore::open_default().expect("models folder")
}

#[test]
fn the_tokenizer_splits_words_into_bert_pieces() {
    let model = store().require("all-minilm-l6-v2").expect("installed");
    let tokenizer = WordPiece::load(&model.files[1]).expect("tokenizer");
    // Ids from BERT's uncased vocabulary: [CLS] hello , world ! [SEP], and the word the
    // Hugging Face course splits into pieces: "embeddings" -> em ##bed ##ding ##s.
    assert_eq!(
        tokenizer.encode("Hello, world!"),
        [101, 7592, 1010, 2088, 999, 102]
    );
    assert_eq!(
        tokenizer.encode("Embeddings"),
        [101, 7861, 8270, 4667, 2015, 102]
    );
    assert_eq!(tokenizer.encode(&"word ".repeat(500)).len(), 128);
}

#[test]
fn questions_match_the_intent_they_mean_and_nothing_else() {
    let store = store();
    let mut embedder = Embedder::load(&store).expect("MiniLM loads");
    let a = embedder.embed("What is your name?").expect("embed");
    let b = embedder.embed("Tell me your name").expect("embed");
    let c = embedder.embed("How tall is Mount Everest?").expect("embed");
    assert_eq!(a.len(), 384);
    assert!((similarity(&a, &a) - 1.0).abs() < 1e-4);
    assert!(similarity(&a, &b) > similarity(&a, &c) + 0.3);

    let intents =
        Intents::parse(DEFAULT_INTENTS, std::path::Path::new("intents.toml")).expect("defaults");
    let mut matcher = Matcher::new(embedder, &intents).expect("phrases embed");
    let name =
        |m: Option<sotto_core::intents::Match>| m.map(|m| intents.intents[m.intent].name.as_str());
    assert_eq!(
        name(matcher.find("Hi there!").expect("find")),
        Some("greeting")
    );
    assert_eq!(
        name(matcher.find("Thank you very much").expect("find")),
        Some("thanks")
    );
    assert_eq!(
        name(matcher.find("Who are you?").expect("find")),
        Some("identity")
    );
    assert_eq!(
        name(matcher.find("What can you do?").expect("find")),
        Some("abilities")
    );
    // Questions that only share a word with an intent are for the language model.
    for question in [
        "What is the capital of France?",
        "Set a timer for ten minutes",
        "How tall is Mount Everest?",
        "Hello, what is the weather like tomorrow?",
        "Thank you for the story, now tell me about dragons",
        "What can you tell me about Paris?",
    ] {
        assert_eq!(
            name(matcher.find(question).expect("find")),
            None,
            "{question}"
        );
    }
}
