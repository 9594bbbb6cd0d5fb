use std::collections::HashMap;

use super::ct2::writer::model_bin;
use super::*;

const D: usize = 4;
const MELS: usize = 80;

/// f16 bytes counting up from `start`, so every slice can be recognised.
fn f16_seq(n: usize, start: f32) -> Vec<u8> {
    (0..n)
        .flat_map(|i| half::f16::from_f32(start + i as f32).to_le_bytes())
        .collect()
}

fn var(name: &str, shape: &[usize], start: f32) -> (String, Vec<usize>, DType, Vec<u8>) {
    let n = shape.iter().product();
    (
        name.to_string(),
        shape.to_vec(),
        DType::F16,
        f16_seq(n, start),
    )
}

/// A Whisper model with one encoder and one decoder layer, D = 4, vocabulary of 6.
fn tiny_ct2() -> Vec<u8> {
    let mut vars = vec![
        (
            "encoder/num_heads".to_string(),
            vec![],
            DType::I8,
            vec![2u8],
        ),
        (
            "decoder/num_heads".to_string(),
            vec![],
            DType::I32,
            2i32.to_le_bytes().to_vec(),
        ),
        var("encoder/conv1/weight", &[D, MELS, 3], 0.0),
        var("encoder/conv1/bias", &[D], 0.0),
        var("encoder/conv2/weight", &[D, D, 3], 0.0),
        var("encoder/conv2/bias", &[D], 0.0),
        var("encoder/position_encodings/encodings", &[6, D], 0.0),
        var("encoder/layer_norm/gamma", &[D], 0.0),
        var("encoder/layer_norm/beta", &[D], 0.0),
        var("decoder/position_encodings/encodings", &[5, D], 0.0),
        var("decoder/embeddings/weight", &[6, D], 0.0),
        var("decoder/layer_norm/gamma", &[D], 0.0),
        var("decoder/layer_norm/beta", &[D], 0.0),
    ];
    for side in ["encoder", "decoder"] {
        let l = format!("{side}/layer_0");
        let mut sublayers = vec![("self_attention", 2)];
        if side == "decoder" {
            sublayers.push(("attention", 3));
        }
        for (attn, linears) in sublayers {
            vars.push(var(&format!("{l}/{attn}/layer_norm/gamma"), &[D], 0.0));
            vars.push(var(&format!("{l}/{attn}/layer_norm/beta"), &[D], 0.0));
            for k in 0..linears {
                // Fused: self-attention linear_0 is [Q;K;V], cross-attention linear_1 is [K;V].
                let rows = match (attn, k) {
                    ("self_attention", 0) => 3 * D,
                    ("attention", 1) => 2 * D,
                    _ => D,
                };
                vars.push(var(
                    &format!("{l}/{attn}/linear_{k}/weight"),
                    &[rows, D],
                    0.0,
                ));
                vars.push(var(&format!("{l}/{attn}/linear_{k}/bias"), &[rows], 100.0));
            }
        }
        vars.push(var(&format!("{l}/ffn/layer_norm/gamma"), &[D], 0.0));
        vars.push(var(&format!("{l}/ffn/layer_norm/beta"), &[D], 0.0));
        vars.push(var(&format!("{l}/ffn/linear_0/weight"), &[2 * D, D], 0.0));
        vars.push(var(&format!("{l}/ffn/linear_0/bias"), &[2 * D], 0.0));
        vars.push(var(&format!("{l}/ffn/linear_1/weight"), &[D, 2 * D], 0.0));
        vars.push(var(&format!("{l}/ffn/linear_1/bias"), &[D], 0.0));
    }
    model_bin(
        &vars,
        &[("decoder/projection/weight", "decoder/embeddings/weight")],
    )
}

struct Parsed {
    hparams: Vec<i32>,
    mel_dims: (i32, i32),
    tokens: Vec<Vec<u8>>,
    /// name -> (dims innermost first, type, bytes)
    tensors: HashMap<String, (Vec<i32>, i32, Vec<u8>)>,
}

fn parse(bytes: &[u8]) -> Parsed {
    let mut at = 0;
    let i32_ = |at: &mut usize| {
        let v = i32::from_le_bytes(bytes[*at..*at + 4].try_into().unwrap());
        *at += 4;
        v
    };
    assert_eq!(i32_(&mut at) as u32, WHISPER_GGML_MAGIC);
    let hparams: Vec<i32> = (0..11).map(|_| i32_(&mut at)).collect();
    let mel_dims = (i32_(&mut at), i32_(&mut at));
    at += (mel_dims.0 * mel_dims.1) as usize * 4;
    let n_tokens = i32_(&mut at);
    let mut tokens = Vec::new();
    for _ in 0..n_tokens {
        let len = i32_(&mut at) as usize;
        tokens.push(bytes[at..at + len].to_vec());
        at += len;
    }
    let mut tensors = HashMap::new();
    while at < bytes.len() {
        let n_dims = i32_(&mut at);
        let name_len = i32_(&mut at) as usize;
        let ttype = i32_(&mut at);
        let dims: Vec<i32> = (0..n_dims).map(|_| i32_(&mut at)).collect();
        let name = String::from_utf8(bytes[at..at + name_len].to_vec()).unwrap();
        at += name_len;
        let n: usize = dims.iter().map(|&d| d as usize).product();
        let size = n * if ttype == GGML_F32 { 4 } else { 2 };
        tensors.insert(name, (dims, ttype, bytes[at..at + size].to_vec()));
        at += size;
    }
    Parsed {
        hparams,
        mel_dims,
        tokens,
        tensors,
    }
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn f16s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(2)
        .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
        .collect()
}

fn convert_tiny() -> Parsed {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.bin"), tiny_ct2()).unwrap();
    std::fs::write(
        dir.path().join("vocabulary.txt"),
        "a\nĠb\n<|endoftext|>\n<|en|>\nx\ny\n",
    )
    .unwrap();
    let out = dir.path().join("ggml.bin");
    convert_dir(dir.path(), &out).unwrap();
    parse(&std::fs::read(out).unwrap())
}

#[test]
fn header_vocabulary_and_mel_bank_are_written() {
    let p = convert_tiny();
    assert_eq!(p.hparams, vec![6, 6, 4, 2, 1, 5, 4, 2, 1, 80, 1]);
    assert_eq!(p.mel_dims, (80, 201));
    assert_eq!(p.tokens, vec![b"a".to_vec(), b" b".to_vec()]);
}

#[test]
fn every_tensor_whisper_cpp_expects_is_there_with_its_shape_and_type() {
    let p = convert_tiny();
    let expect = |name: &str, dims: &[i32], ttype: i32| {
        let (d, t, _) = p
            .tensors
            .get(name)
            .unwrap_or_else(|| panic!("missing {name}"));
        assert_eq!((d.as_slice(), *t), (dims, ttype), "{name}");
    };
    expect("encoder.positional_embedding", &[4, 6], GGML_F32);
    expect("encoder.conv1.weight", &[3, 80, 4], GGML_F16);
    expect("encoder.conv1.bias", &[1, 4], GGML_F32);
    expect("encoder.conv2.weight", &[3, 4, 4], GGML_F16);
    expect("encoder.ln_post.weight", &[4], GGML_F32);
    expect("decoder.positional_embedding", &[4, 5], GGML_F32);
    expect("decoder.token_embedding.weight", &[4, 6], GGML_F16);
    expect("decoder.ln.bias", &[4], GGML_F32);
    for side in ["encoder", "decoder"] {
        let b = format!("{side}.blocks.0");
        for proj in ["query", "value", "out"] {
            expect(&format!("{b}.attn.{proj}.weight"), &[4, 4], GGML_F16);
            expect(&format!("{b}.attn.{proj}.bias"), &[4], GGML_F32);
        }
        expect(&format!("{b}.attn.key.weight"), &[4, 4], GGML_F16);
        assert!(!p.tensors.contains_key(&format!("{b}.attn.key.bias")));
        expect(&format!("{b}.attn_ln.weight"), &[4], GGML_F32);
        expect(&format!("{b}.mlp_ln.bias"), &[4], GGML_F32);
        expect(&format!("{b}.mlp.0.weight"), &[4, 8], GGML_F16);
        expect(&format!("{b}.mlp.2.weight"), &[8, 4], GGML_F16);
    }
    expect("decoder.blocks.0.cross_attn_ln.weight", &[4], GGML_F32);
    expect("decoder.blocks.0.cross_attn.key.weight", &[4, 4], GGML_F16);
    expect("decoder.blocks.0.cross_attn.value.bias", &[4], GGML_F32);
    assert!(!p
        .tensors
        .contains_key("decoder.blocks.0.cross_attn.key.bias"));
    // Globals: conv1 and conv2 (w, b), two positional embeddings, token embedding, two
    // final layer norms (w, b) = 11. A block: attn_ln 2, q 2, k 1, v 2, out 2, mlp_ln 2,
    // mlp.0 2, mlp.2 2 = 15; a decoder block adds cross-attention: ln 2, q 2, k 1, v 2,
    // out 2 = 9. (whisper.cpp's tiny, with 4 + 4 blocks: 11 + 60 + 96 = 167 tensors.)
    assert_eq!(p.tensors.len(), 11 + 15 + 24);
}

#[test]
fn fused_projections_are_split_at_the_right_rows() {
    let p = convert_tiny();
    let weights = |name: &str| f16s(&p.tensors[name].2);
    let biases = |name: &str| f32s(&p.tensors[name].2);
    // Self-attention linear_0 counts 0..48 over [Q;K;V] rows of 4: Q from 0, K 16, V 32.
    assert_eq!(weights("encoder.blocks.0.attn.query.weight")[0], 0.0);
    assert_eq!(weights("encoder.blocks.0.attn.key.weight")[0], 16.0);
    assert_eq!(weights("encoder.blocks.0.attn.value.weight")[15], 47.0);
    assert_eq!(
        biases("encoder.blocks.0.attn.query.bias"),
        vec![100.0, 101.0, 102.0, 103.0]
    );
    assert_eq!(
        biases("encoder.blocks.0.attn.value.bias"),
        vec![108.0, 109.0, 110.0, 111.0]
    );
    // Cross-attention linear_1 is [K;V].
    assert_eq!(weights("decoder.blocks.0.cross_attn.value.weight")[0], 16.0);
    assert_eq!(biases("decoder.blocks.0.cross_attn.value.bias")[0], 104.0);
    // Conv biases and positional embeddings were widened to f32 intact.
    assert_eq!(biases("encoder.conv1.bias"), vec![0.0, 1.0, 2.0, 3.0]);
}

#[test]
fn truncated_and_foreign_models_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let full = tiny_ct2();
    std::fs::write(dir.path().join("vocabulary.txt"), "a\n<|endoftext|>\n").unwrap();
    std::fs::write(dir.path().join("model.bin"), &full[..full.len() / 2]).unwrap();
    let out = dir.path().join("out.bin");
    let err = convert_dir(dir.path(), &out).unwrap_err().to_string();
    assert!(err.contains("truncated"), "{err}");

    let mut foreign = full.clone();
    foreign[6..17].copy_from_slice(b"TransformrS");
    std::fs::write(dir.path().join("model.bin"), foreign).unwrap();
    let err = convert_dir(dir.path(), &out).unwrap_err().to_string();
    assert!(err.contains("not Whisper"), "{err}");
}
