//! CTranslate2 (faster-whisper) Whisper models -> whisper.cpp's ggml format.
//!
//! Only CTranslate2 Whisper models are published in the package registries these
//! machines reach, and whisper.cpp reads only its own format; this converter bridges
//! them. It is also a user feature: `sotto models convert-whisper DIR OUT` turns any
//! faster-whisper model folder into a file Sotto can load.
//!
//! whisper.cpp's file: magic, 11 i32 hyper-parameters, the mel filter bank, the regular
//! BPE tokens, then tensors (n_dims, name length, type, dims innermost first, name, data).
//! 1-D tensors, conv biases (as [n, 1]) and positional embeddings are f32; the rest f16.

pub mod ct2;
pub mod mel;
pub mod vocab;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use ct2::{Ct2Model, DType, Var};

use crate::error::ModelError;
use crate::format::WHISPER_GGML_MAGIC;

const GGML_F32: i32 = 0;
const GGML_F16: i32 = 1;

/// Converts the faster-whisper model folder `dir` (model.bin + vocabulary.txt or .json)
/// into the whisper.cpp model file `out`.
pub fn convert_dir(dir: &Path, out: &Path) -> Result<(), ModelError> {
    let model_path = dir.join("model.bin");
    let fail = |path: &Path, reason: String| ModelError::Convert {
        path: path.to_path_buf(),
        into: "whisper.cpp format",
        reason,
    };
    let (vocab_path, is_json) = if dir.join("vocabulary.txt").exists() {
        (dir.join("vocabulary.txt"), false)
    } else {
        (dir.join("vocabulary.json"), true)
    };
    let vocab_text = std::fs::read_to_string(&vocab_path)
        .map_err(|e| fail(&vocab_path, format!("cannot read the vocabulary ({e})")))?;
    let tokens = vocab::regular_tokens(&vocab_text, is_json).map_err(|r| fail(&vocab_path, r))?;
    let model = Ct2Model::read(&model_path).map_err(|r| fail(&model_path, r))?;
    let file = File::create(out).map_err(|e| ModelError::io("creating", out, e))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    write_ggml(&model, &tokens, &mut w).map_err(|e| match e {
        WriteError::Model(reason) => fail(&model_path, reason),
        WriteError::Io(e) => ModelError::io("writing", out, e),
    })?;
    w.flush().map_err(|e| ModelError::io("writing", out, e))?;
    w.get_ref()
        .sync_all()
        .map_err(|e| ModelError::io("writing", out, e))
}

enum WriteError {
    Model(String),
    Io(std::io::Error),
}

impl From<String> for WriteError {
    fn from(s: String) -> Self {
        WriteError::Model(s)
    }
}

impl From<std::io::Error> for WriteError {
    fn from(e: std::io::Error) -> Self {
        WriteError::Io(e)
    }
}

/// The dimensions whisper.cpp reads from the header, derived from the tensors.
#[derive(Debug, PartialEq, Eq)]
struct HParams {
    n_vocab: usize,
    n_audio_ctx: usize,
    n_audio_state: usize,
    n_audio_head: usize,
    n_audio_layer: usize,
    n_text_ctx: usize,
    n_text_state: usize,
    n_text_head: usize,
    n_text_layer: usize,
    n_mels: usize,
}

fn hparams(m: &Ct2Model) -> Result<HParams, String> {
    let dim = |name: &str, i: usize| -> Result<usize, String> {
        m.get(name)?
            .shape
            .get(i)
            .copied()
            .ok_or(format!("`{name}` has no dimension {i}"))
    };
    let heads = |name: &str| -> Result<usize, String> {
        m.get(name)?
            .scalar_int()
            .filter(|&h| h > 0)
            .map(|h| h as usize)
            .ok_or(format!("`{name}` is not a positive integer"))
    };
    let layers = |side: &str| {
        (0..)
            .take_while(|i| m.has(&format!("{side}/layer_{i}/ffn/linear_0/weight")))
            .count()
    };
    Ok(HParams {
        n_vocab: dim("decoder/embeddings/weight", 0)?,
        n_audio_ctx: dim("encoder/position_encodings/encodings", 0)?,
        n_audio_state: dim("encoder/position_encodings/encodings", 1)?,
        n_audio_head: heads("encoder/num_heads")?,
        n_audio_layer: layers("encoder"),
        n_text_ctx: dim("decoder/position_encodings/encodings", 0)?,
        n_text_state: dim("decoder/position_encodings/encodings", 1)?,
        n_text_head: heads("decoder/num_heads")?,
        n_text_layer: layers("decoder"),
        n_mels: dim("encoder/conv1/weight", 1)?,
    })
}

fn write_i32(w: &mut impl Write, v: usize) -> Result<(), WriteError> {
    let v = i32::try_from(v).map_err(|_| format!("{v} does not fit the format's 32-bit fields"))?;
    w.write_all(&v.to_le_bytes())?;
    Ok(())
}

fn write_ggml(m: &Ct2Model, tokens: &[Vec<u8>], w: &mut impl Write) -> Result<(), WriteError> {
    let hp = hparams(m)?;
    if hp.n_audio_layer == 0 || hp.n_text_layer == 0 {
        return Err(WriteError::Model(
            "the model has no encoder or decoder layers".into(),
        ));
    }
    w.write_all(&WHISPER_GGML_MAGIC.to_le_bytes())?;
    for v in [
        hp.n_vocab,
        hp.n_audio_ctx,
        hp.n_audio_state,
        hp.n_audio_head,
        hp.n_audio_layer,
        hp.n_text_ctx,
        hp.n_text_state,
        hp.n_text_head,
        hp.n_text_layer,
        hp.n_mels,
        GGML_F16 as usize, // ftype: the large matrices are f16
    ] {
        write_i32(w, v)?;
    }
    write_i32(w, hp.n_mels)?;
    write_i32(w, mel::N_BINS)?;
    for x in mel::filters(hp.n_mels) {
        w.write_all(&x.to_le_bytes())?;
    }
    write_i32(w, tokens.len())?;
    for t in tokens {
        write_i32(w, t.len())?;
        w.write_all(t)?;
    }

    let mut t = TensorWriter { m, w };
    t.vector_as_matrix("encoder/conv1/bias", "encoder.conv1.bias")?;
    t.f16("encoder/conv1/weight", "encoder.conv1.weight")?;
    t.vector_as_matrix("encoder/conv2/bias", "encoder.conv2.bias")?;
    t.f16("encoder/conv2/weight", "encoder.conv2.weight")?;
    t.f32(
        "encoder/position_encodings/encodings",
        "encoder.positional_embedding",
    )?;
    for i in 0..hp.n_audio_layer {
        let (src, dst) = (format!("encoder/layer_{i}"), format!("encoder.blocks.{i}"));
        t.self_attention(&src, &dst, hp.n_audio_state)?;
        t.ffn(&src, &dst)?;
    }
    t.layer_norm("encoder/layer_norm", "encoder.ln_post")?;

    t.f32(
        "decoder/position_encodings/encodings",
        "decoder.positional_embedding",
    )?;
    t.f16(
        "decoder/embeddings/weight",
        "decoder.token_embedding.weight",
    )?;
    for i in 0..hp.n_text_layer {
        let (src, dst) = (format!("decoder/layer_{i}"), format!("decoder.blocks.{i}"));
        t.self_attention(&src, &dst, hp.n_text_state)?;
        t.cross_attention(&src, &dst, hp.n_text_state)?;
        t.ffn(&src, &dst)?;
    }
    t.layer_norm("decoder/layer_norm", "decoder.ln")?;
    Ok(())
}

struct TensorWriter<'a, W: Write> {
    m: &'a Ct2Model,
    w: &'a mut W,
}

impl<W: Write> TensorWriter<'_, W> {
    /// Writes `var` under `name` with element type `ttype` and PyTorch-order `shape`.
    fn put(
        &mut self,
        name: &str,
        var: &Var,
        shape: &[usize],
        ttype: i32,
    ) -> Result<(), WriteError> {
        write_i32(self.w, shape.len())?;
        write_i32(self.w, name.len())?;
        self.w.write_all(&ttype.to_le_bytes())?;
        for &d in shape.iter().rev() {
            write_i32(self.w, d)?;
        }
        self.w.write_all(name.as_bytes())?;
        let data = convert(var, ttype).map_err(|r| format!("tensor {name}: {r}"))?;
        self.w.write_all(&data)?;
        Ok(())
    }

    fn f16(&mut self, src: &str, dst: &str) -> Result<(), WriteError> {
        let v = self.m.get(src)?;
        self.put(dst, v, &v.shape.clone(), GGML_F16)
    }

    fn f32(&mut self, src: &str, dst: &str) -> Result<(), WriteError> {
        let v = self.m.get(src)?;
        self.put(dst, v, &v.shape.clone(), GGML_F32)
    }

    /// whisper.cpp keeps conv biases as [n, 1] matrices.
    fn vector_as_matrix(&mut self, src: &str, dst: &str) -> Result<(), WriteError> {
        let v = self.m.get(src)?;
        self.put(dst, v, &[v.shape.iter().product(), 1], GGML_F32)
    }

    fn linear(&mut self, src: &str, dst: &str) -> Result<(), WriteError> {
        self.f16(&format!("{src}/weight"), &format!("{dst}.weight"))?;
        self.f32(&format!("{src}/bias"), &format!("{dst}.bias"))
    }

    fn layer_norm(&mut self, src: &str, dst: &str) -> Result<(), WriteError> {
        self.f32(&format!("{src}/gamma"), &format!("{dst}.weight"))?;
        self.f32(&format!("{src}/beta"), &format!("{dst}.bias"))
    }

    /// Writes rows `[at*d, (at+1)*d)` of a fused projection: weight, and bias unless `key`
    /// (Whisper's key projections have no bias; CTranslate2 stores zeros there).
    fn fused_slice(
        &mut self,
        src: &str,
        dst: &str,
        at: usize,
        d: usize,
        key: bool,
    ) -> Result<(), WriteError> {
        let weight = self.m.get(&format!("{src}/weight"))?.rows(at * d, d)?;
        self.put(
            &format!("{dst}.weight"),
            &weight,
            &weight.shape.clone(),
            GGML_F16,
        )?;
        if !key {
            let bias = self.m.get(&format!("{src}/bias"))?.rows(at * d, d)?;
            self.put(&format!("{dst}.bias"), &bias, &bias.shape.clone(), GGML_F32)?;
        }
        Ok(())
    }

    fn self_attention(&mut self, src: &str, dst: &str, d: usize) -> Result<(), WriteError> {
        let a = format!("{src}/self_attention");
        self.layer_norm(&format!("{a}/layer_norm"), &format!("{dst}.attn_ln"))?;
        let fused = format!("{a}/linear_0");
        self.fused_slice(&fused, &format!("{dst}.attn.query"), 0, d, false)?;
        self.fused_slice(&fused, &format!("{dst}.attn.key"), 1, d, true)?;
        self.fused_slice(&fused, &format!("{dst}.attn.value"), 2, d, false)?;
        self.linear(&format!("{a}/linear_1"), &format!("{dst}.attn.out"))
    }

    fn cross_attention(&mut self, src: &str, dst: &str, d: usize) -> Result<(), WriteError> {
        let a = format!("{src}/attention");
        self.layer_norm(&format!("{a}/layer_norm"), &format!("{dst}.cross_attn_ln"))?;
        self.linear(&format!("{a}/linear_0"), &format!("{dst}.cross_attn.query"))?;
        let fused = format!("{a}/linear_1");
        self.fused_slice(&fused, &format!("{dst}.cross_attn.key"), 0, d, true)?;
        self.fused_slice(&fused, &format!("{dst}.cross_attn.value"), 1, d, false)?;
        self.linear(&format!("{a}/linear_2"), &format!("{dst}.cross_attn.out"))
    }

    fn ffn(&mut self, src: &str, dst: &str) -> Result<(), WriteError> {
        self.layer_norm(&format!("{src}/ffn/layer_norm"), &format!("{dst}.mlp_ln"))?;
        self.linear(&format!("{src}/ffn/linear_0"), &format!("{dst}.mlp.0"))?;
        self.linear(&format!("{src}/ffn/linear_1"), &format!("{dst}.mlp.2"))
    }
}

/// The tensor's bytes as f32 or f16 little-endian.
fn convert(var: &Var, ttype: i32) -> Result<Vec<u8>, String> {
    match (var.dtype, ttype) {
        (DType::F16, GGML_F16) | (DType::F32, GGML_F32) => Ok(var.data.clone()),
        (DType::F16, GGML_F32) => Ok(var
            .data
            .chunks_exact(2)
            .flat_map(|c| {
                half::f16::from_le_bytes([c[0], c[1]])
                    .to_f32()
                    .to_le_bytes()
            })
            .collect()),
        (DType::F32, GGML_F16) => Ok(var
            .data
            .chunks_exact(4)
            .flat_map(|c| {
                half::f16::from_f32(f32::from_le_bytes([c[0], c[1], c[2], c[3]])).to_le_bytes()
            })
            .collect()),
        (other, _) => Err(format!(
            "{other:?} weights are not supported (quantized models cannot be converted)"
        )),
    }
}

#[cfg(test)]
mod tests;
