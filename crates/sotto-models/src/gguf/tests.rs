use super::*;

/// ggml's own Q5_0 decoding (`dequantize_row_q5_0`), written its way: the values as
/// integers, before the scale.
fn q5_0_values(block: &[u8]) -> Vec<i32> {
    let qh = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
    let mut y = vec![0; 32];
    for j in 0..16 {
        let xh_0 = ((qh >> j) << 4) & 0x10;
        let xh_1 = (qh >> (j + 12)) & 0x10;
        y[j] = ((u32::from(block[6 + j]) & 0x0F) | xh_0) as i32 - 16;
        y[j + 16] = ((u32::from(block[6 + j]) >> 4) | xh_1) as i32 - 16;
    }
    y
}

fn q8_0_values(block: &[u8]) -> Vec<i32> {
    block[2..34].iter().map(|&b| i32::from(b as i8)).collect()
}

/// A deterministic stream of bytes (no test depends on a random seed).
fn bytes(seed: u32, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn every_q5_0_value_is_the_same_q8_0_value() {
    for seed in 1..200 {
        let mut block = [0u8; 22];
        block.copy_from_slice(&bytes(seed, 22));
        let wide = q5_0_to_q8_0(&block);
        assert_eq!(wide[..2], block[..2], "the scale is kept");
        assert_eq!(q8_0_values(&wide), q5_0_values(&block), "seed {seed}");
    }
    // The extremes: every high bit set and every nibble 15 (all +15), then none (all -16).
    let mut top = [0xFFu8; 22];
    top[..2].copy_from_slice(&[0x00, 0x3C]);
    assert_eq!(q8_0_values(&q5_0_to_q8_0(&top)), vec![15; 32]);
    let mut bottom = [0u8; 22];
    bottom[..2].copy_from_slice(&[0x00, 0x3C]);
    assert_eq!(q8_0_values(&q5_0_to_q8_0(&bottom)), vec![-16; 32]);
}

/// A GGUF v3 file as llama.cpp writes one: metadata (a string, an array of strings and,
/// when given, the alignment), then tensor entries, padding and the tensors' data, each
/// aligned (the last one without its padding when `trim` is set).
struct Built {
    bytes: Vec<u8>,
    /// Bytes of the header up to the end of the metadata.
    metadata_len: usize,
}

type Tensor = (&'static str, Vec<u64>, u32, Vec<u8>);

fn gguf(alignment: Option<u32>, tensors: &[Tensor], trim: bool) -> Built {
    let string = |out: &mut Vec<u8>, s: &[u8]| {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s);
    };
    let mut out = b"GGUF".to_vec();
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(2 + u64::from(alignment.is_some())).to_le_bytes());
    string(&mut out, b"general.architecture");
    out.extend_from_slice(&8u32.to_le_bytes());
    string(&mut out, b"qwen2");
    string(&mut out, b"tokenizer.ggml.tokens");
    out.extend_from_slice(&9u32.to_le_bytes());
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&2u64.to_le_bytes());
    string(&mut out, b"<a>");
    string(&mut out, b"<bc>");
    if let Some(alignment) = alignment {
        string(&mut out, b"general.alignment");
        out.extend_from_slice(&4u32.to_le_bytes());
        out.extend_from_slice(&alignment.to_le_bytes());
    }
    let metadata_len = out.len();
    let align = |n: usize| n.next_multiple_of(alignment.unwrap_or(32) as usize);
    let mut offset = 0;
    for (name, dims, ty, data) in tensors {
        string(&mut out, name.as_bytes());
        out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
        for d in dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&(offset as u64).to_le_bytes());
        offset += align(data.len());
    }
    out.resize(align(out.len()), 0);
    for (i, (_, _, _, data)) in tensors.iter().enumerate() {
        out.extend_from_slice(data);
        if !(trim && i + 1 == tensors.len()) {
            out.resize(align(out.len()), 0);
        }
    }
    Built {
        bytes: out,
        metadata_len,
    }
}

/// A tensor entry read back independently of the converter.
struct Entry {
    /// The entry's bytes without its type and offset.
    shape: Vec<u8>,
    ggml_type: u32,
    offset: u64,
}

/// The tensor entries and the data section's start of a GGUF file.
fn entries(file: &[u8], metadata_len: usize, n: usize, alignment: usize) -> (Vec<Entry>, usize) {
    let u64_at = |at: usize| u64::from_le_bytes(file[at..at + 8].try_into().unwrap());
    let mut at = metadata_len;
    let mut out = Vec::new();
    for _ in 0..n {
        let start = at;
        at += 8 + u64_at(at) as usize;
        let dims = u32::from_le_bytes(file[at..at + 4].try_into().unwrap()) as usize;
        at += 4 + 8 * dims;
        let shape = file[start..at].to_vec();
        let ggml_type = u32::from_le_bytes(file[at..at + 4].try_into().unwrap());
        let offset = u64_at(at + 4);
        at += 12;
        out.push(Entry {
            shape,
            ggml_type,
            offset,
        });
    }
    (out, at.next_multiple_of(alignment))
}

fn widen_bytes(input: &[u8]) -> (Result<Widened, ModelError>, Option<Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (dir.path().join("in.gguf"), dir.path().join("out.gguf"));
    std::fs::write(&from, input).unwrap();
    let result = widen_q5_0(&from, &to);
    (result, std::fs::read(&to).ok())
}

#[test]
fn a_model_file_is_rewritten_with_the_same_numbers() {
    let norm: Vec<u8> = bytes(7, 4 * 4);
    let weights = bytes(8, 22 * 4); // [64, 2]: four Q5_0 blocks
    let head: Vec<u8> = bytes(9, 34 * 2); // a Q8_0 tensor, copied
    let tensors: Vec<Tensor> = vec![
        ("blk.0.attn_norm.weight", vec![4], 0, norm.clone()),
        (
            "blk.0.ffn_up.weight",
            vec![64, 2],
            GGML_Q5_0,
            weights.clone(),
        ),
        ("output.weight", vec![32, 2], GGML_Q8_0, head.clone()),
    ];
    let built = gguf(Some(64), &tensors, false);

    let (done, file) = widen_bytes(&built.bytes);
    assert_eq!(
        done.unwrap(),
        Widened {
            tensors: 1,
            kept: 2
        }
    );
    let file = file.unwrap();
    let meta = built.metadata_len;
    assert_eq!(file[..meta], built.bytes[..meta], "metadata copied");
    let (before, _) = entries(&built.bytes, meta, 3, 64);
    let (after, data) = entries(&file, meta, 3, 64);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(a.shape, b.shape, "names and dimensions copied");
    }
    let types: Vec<u32> = after.iter().map(|t| t.ggml_type).collect();
    assert_eq!(types, vec![0, GGML_Q8_0, GGML_Q8_0]);
    let offsets: Vec<u64> = after.iter().map(|t| t.offset).collect();
    assert_eq!(offsets, vec![0, 64, 256], "packed in order, each aligned");

    let at = |i: usize, len: usize| &file[data + after[i].offset as usize..][..len];
    assert_eq!(at(0, norm.len()), &norm[..]);
    assert_eq!(at(2, head.len()), &head[..]);
    let wide = at(1, 34 * 4);
    for b in 0..4 {
        assert_eq!(
            q8_0_values(&wide[b * 34..][..34]),
            q5_0_values(&weights[b * 22..][..22]),
            "block {b}"
        );
        assert_eq!(
            wide[b * 34..][..2],
            weights[b * 22..][..2],
            "block {b}'s scale"
        );
    }
    assert_eq!(file.len(), data + 384, "the last tensor padded too");
}

#[test]
fn a_last_q5_0_tensor_without_padding_and_the_default_alignment() {
    let weights = bytes(5, 22 * 3); // [96]: three blocks, 66 bytes, not padded at the end
    let tensors: Vec<Tensor> = vec![
        ("token_embd.weight", vec![32], GGML_Q8_0, bytes(4, 34)),
        (
            "blk.0.ffn_gate.weight",
            vec![96],
            GGML_Q5_0,
            weights.clone(),
        ),
    ];
    let built = gguf(None, &tensors, true);
    assert_eq!(
        built.bytes.len() % 32,
        66 % 32,
        "the input ends without padding"
    );

    let (done, file) = widen_bytes(&built.bytes);
    assert_eq!(
        done.unwrap(),
        Widened {
            tensors: 1,
            kept: 1
        }
    );
    let file = file.unwrap();
    let (after, data) = entries(&file, built.metadata_len, 2, 32);
    assert_eq!(after[1].offset, 64);
    let wide = &file[data + 64..][..102];
    for b in 0..3 {
        assert_eq!(
            q8_0_values(&wide[b * 34..][..34]),
            q5_0_values(&weights[b * 22..][..22])
        );
    }
}

#[test]
fn a_damaged_file_is_refused_with_a_reason_and_leaves_nothing() {
    let q5: Vec<Tensor> = vec![
        ("blk.0.ffn_up.weight", vec![64, 2], GGML_Q5_0, bytes(3, 88)),
        ("output_norm.weight", vec![4], 0, bytes(2, 16)),
    ];
    let built = gguf(Some(32), &q5, false);
    let good = built.bytes.clone();
    // general.alignment is the metadata's last value.
    let mut huge_alignment = good.clone();
    let alignment_at = built.metadata_len - 4;
    huge_alignment[alignment_at..built.metadata_len].copy_from_slice(&(1u32 << 30).to_le_bytes());
    // The second tensor's offset (the last field of the entries, 59 + 50 bytes long) moved
    // into the first one's data.
    let mut overlapping = good.clone();
    let offset_at = built.metadata_len + 59 + 50 - 8;
    assert_eq!(good[offset_at..offset_at + 8], 96u64.to_le_bytes());
    overlapping[offset_at..offset_at + 8].copy_from_slice(&32u64.to_le_bytes());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not gguf", b"ONNX and more bytes".to_vec(), "not a GGUF"),
        ("truncated header", good[..40].to_vec(), "past the end"),
        (
            "truncated data",
            good[..good.len() - 40].to_vec(),
            "outside its place",
        ),
        (
            "alignment of 1 GiB",
            huge_alignment,
            "power of two up to 64 KiB",
        ),
        (
            "overlapping tensors",
            overlapping,
            "does not fill its place",
        ),
    ];
    for (what, bytes, reason) in cases {
        let (result, left) = widen_bytes(&bytes);
        let err = result.unwrap_err().to_string();
        assert!(err.contains(reason), "{what}: {err}");
        assert!(left.is_none(), "{what}: no output left behind");
    }
}

#[test]
fn the_input_is_never_its_own_output() {
    let built = gguf(Some(32), &[("w", vec![32], GGML_Q5_0, bytes(1, 22))], false);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    std::fs::write(&path, &built.bytes).unwrap();
    let err = widen_q5_0(&path, &path).unwrap_err().to_string();
    assert!(err.contains("the input itself"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        built.bytes,
        "the model is untouched"
    );
}
