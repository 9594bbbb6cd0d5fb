//! GGUF re-typing: a llama.cpp model's Q5_0 weights rewritten as Q8_0, value for value.
//!
//! Why: llama.cpp's "Q4_K_M" files of the small Qwen2.5 models hold most of their weights
//! as Q5_0 (their rows of 896 do not split into K-quant super-blocks), and on x86-64 a
//! Q5_0 block takes about twice the instructions of a Q8_0 block to multiply (the fifth
//! bit is unpacked from a separate word). Generating one token on this project's CPUs is
//! bound by that arithmetic, not by reading the weights (docs/BENCHMARKS.md, "Q5_0 weights
//! as Q8_0"), so the same numbers in Q8_0 are generated faster, for a larger file.
//!
//! Exact: a Q5_0 block is one f16 scale `d` and 32 five-bit values `q`, meaning
//! `d * (q - 16)`; a Q8_0 block is one f16 scale and 32 signed bytes, meaning `d * b`. With
//! the same `d` and `b = q - 16` every weight is the same number. (The sums run through other
//! kernels, in another order, so the logits can differ in their last bits.)
//!
//! The file's metadata is copied byte for byte (`general.file_type` still names the
//! original quantization); only the tensor entries' types and offsets and the data change.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::ModelError;

/// What [`widen_q5_0`] makes, for messages.
pub const OUTPUT: &str = "GGUF with Q8_0 weights";

/// ggml's type id of Q5_0 blocks.
const GGML_Q5_0: u32 = 6;
/// ggml's type id of Q8_0 blocks.
const GGML_Q8_0: u32 = 8;
/// Values per Q5_0 or Q8_0 block.
const BLOCK: u64 = 32;
/// Bytes of one Q5_0 block: f16 scale, 32 high bits, 16 bytes of low nibbles.
const Q5_0_BYTES: u64 = 22;
/// Bytes of one Q8_0 block: f16 scale, 32 signed bytes.
const Q8_0_BYTES: u64 = 34;
/// Data alignment when the file does not name one (`general.alignment`).
const DEFAULT_ALIGNMENT: u64 = 32;
/// More tensors or keys than any real model has: the header is damaged.
const MAX_ENTRIES: u64 = 1_000_000;
/// A larger alignment than any real model's (they use 32): the header is damaged.
const MAX_ALIGNMENT: u64 = 64 * 1024;
/// Longer keys or tensor names than any real model's: the header is damaged.
const MAX_NAME: u64 = 64 * 1024;
/// ggml's most dimensions per tensor.
const MAX_DIMS: u32 = 4;

/// What a conversion did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Widened {
    /// Tensors rewritten from Q5_0 to Q8_0.
    pub tensors: usize,
    /// Tensors copied as they were.
    pub kept: usize,
}

/// One tensor's entry in the header.
struct TensorInfo {
    name: Vec<u8>,
    dims: Vec<u64>,
    ggml_type: u32,
    /// Offset of its data from the start of the data section.
    offset: u64,
}

/// Reads a GGUF header field by field, with every length checked against the file.
struct HeaderReader<R> {
    inner: R,
    /// Bytes read so far: the header's length when it ends.
    read: u64,
    /// The file's length, which no length inside it may exceed.
    file_len: u64,
}

impl<R: Read> HeaderReader<R> {
    /// Consumes `n` bytes, into `keep` when given (otherwise they are skipped).
    fn take(&mut self, n: u64, keep: Option<&mut Vec<u8>>) -> Result<(), String> {
        if n > self.file_len.saturating_sub(self.read) {
            return Err(format!(
                "a length of {n} bytes runs past the end of the file"
            ));
        }
        let mut part = (&mut self.inner).take(n);
        let got = match keep {
            Some(buf) => part.read_to_end(buf),
            None => std::io::copy(&mut part, &mut std::io::sink()).map(|n| n as usize),
        }
        .map_err(|e| format!("its header cannot be read ({e})"))?;
        if got as u64 != n {
            return Err("its header is truncated".into());
        }
        self.read += n;
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut buf = Vec::with_capacity(N);
        self.take(N as u64, Some(&mut buf))?;
        let mut out = [0; N];
        out.copy_from_slice(&buf);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, String> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, String> {
        self.array().map(u64::from_le_bytes)
    }

    /// A string (a key or a tensor's name), at most `max` bytes long.
    fn string(&mut self, max: u64) -> Result<Vec<u8>, String> {
        let n = self.u64()?;
        if n > max {
            return Err(format!("a name of {n} bytes (at most {max} expected)"));
        }
        let mut buf = Vec::new();
        self.take(n, Some(&mut buf))?;
        Ok(buf)
    }

    /// Skips one metadata value of GGUF type `ty`, returning it when it is a u32 (the only
    /// value this module reads is `general.alignment`, a u32).
    fn value(&mut self, ty: u32, in_array: bool) -> Result<Option<u32>, String> {
        let fixed = match ty {
            0 | 1 | 7 => 1, // u8, i8, bool
            2 | 3 => 2,     // u16, i16
            4 => return self.u32().map(Some),
            5 | 6 => 4,   // i32, f32
            10..=12 => 8, // u64, i64, f64
            8 => {
                let n = self.u64()?;
                self.take(n, None)?;
                return Ok(None);
            }
            // Arrays of arrays are not GGUF (llama.cpp refuses them too).
            9 if !in_array => {
                let item = self.u32()?;
                let n = self.u64()?;
                if n > self.file_len {
                    return Err(format!("an array of {n} items is longer than the file"));
                }
                for _ in 0..n {
                    self.value(item, true)?;
                }
                return Ok(None);
            }
            other => return Err(format!("unknown metadata type {other}")),
        };
        self.take(fixed, None)?;
        Ok(None)
    }
}

/// Rewrites every Q5_0 tensor of the GGUF file `input` as Q8_0 into `output` (see the
/// module doc); everything else is copied unchanged. On an error nothing is written to
/// `output` (an existing file there stays as it was); `output` may not be `input`.
pub fn widen_q5_0(input: &Path, output: &Path) -> Result<Widened, ModelError> {
    if std::fs::canonicalize(output)
        .is_ok_and(|o| std::fs::canonicalize(input).is_ok_and(|i| i == o))
    {
        return Err(fail(input, "the output is the input itself".into()));
    }
    // Written beside `output` and renamed into place whole: an error leaves no file, and
    // never removes one that was there before.
    let mut part = output.as_os_str().to_owned();
    part.push(".widening");
    let part = std::path::PathBuf::from(part);
    let result = widen_into(input, &part).and_then(|done| {
        std::fs::rename(&part, output).map_err(|e| ModelError::io("renaming", &part, e))?;
        Ok(done)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result
}

fn fail(input: &Path, reason: String) -> ModelError {
    ModelError::Convert {
        path: input.to_path_buf(),
        into: OUTPUT,
        reason,
    }
}

fn widen_into(input: &Path, output: &Path) -> Result<Widened, ModelError> {
    let fail = |reason: String| fail(input, reason);
    let read_err = |e| ModelError::io("reading", input, e);
    let write_err = |e| ModelError::io("writing", output, e);
    let file = File::open(input).map_err(|e| ModelError::io("opening", input, e))?;
    let file_len = file.metadata().map_err(read_err)?.len();
    let mut header = HeaderReader {
        inner: BufReader::new(file),
        read: 0,
        file_len,
    };

    // Magic, version, counts and metadata: copied as they are.
    if header.array::<4>().map_err(fail)? != *b"GGUF" {
        return Err(fail("it is not a GGUF file".into()));
    }
    let version = header.u32().map_err(fail)?;
    if !(2..=3).contains(&version) {
        return Err(fail(format!("GGUF version {version} (2 or 3 expected)")));
    }
    let n_tensors = header.u64().map_err(fail)?;
    let n_kv = header.u64().map_err(fail)?;
    if n_tensors == 0 || n_tensors > MAX_ENTRIES || n_kv > MAX_ENTRIES {
        return Err(fail(format!(
            "an implausible header ({n_tensors} tensors, {n_kv} keys)"
        )));
    }
    let mut alignment = None;
    for _ in 0..n_kv {
        let key = header.string(MAX_NAME).map_err(fail)?;
        let ty = header.u32().map_err(fail)?;
        let value = header.value(ty, false).map_err(fail)?;
        if key == b"general.alignment" {
            if alignment.is_some() {
                return Err(fail("general.alignment is given twice".into()));
            }
            alignment = Some(
                value
                    .map(u64::from)
                    .filter(|a| a.is_power_of_two() && *a <= MAX_ALIGNMENT)
                    .ok_or_else(|| {
                        fail("general.alignment is not a power of two up to 64 KiB".into())
                    })?,
            );
        }
    }
    let alignment = alignment.unwrap_or(DEFAULT_ALIGNMENT);
    let metadata_len = header.read;

    let mut tensors = Vec::new();
    for _ in 0..n_tensors {
        let name = header.string(MAX_NAME).map_err(fail)?;
        let n_dims = header.u32().map_err(fail)?;
        if n_dims > MAX_DIMS {
            return Err(fail(format!("a tensor with {n_dims} dimensions")));
        }
        let dims = (0..n_dims)
            .map(|_| header.u64())
            .collect::<Result<Vec<_>, _>>()
            .map_err(fail)?;
        let ggml_type = header.u32().map_err(fail)?;
        let offset = header.u64().map_err(fail)?;
        tensors.push(TensorInfo {
            name,
            dims,
            ggml_type,
            offset,
        });
    }
    let data_start = header.read.next_multiple_of(alignment);
    let data_len = file_len
        .checked_sub(data_start)
        .ok_or_else(|| fail("its data section is missing".into()))?;

    // Each tensor's place, from the offsets, which llama.cpp requires to follow one
    // another in the header's order, aligned: up to the next tensor's start (its padding
    // included), the last one up to the end of the file. A re-typed tensor takes its Q8_0
    // size in the new layout; the others keep their place's length.
    let mut spans = Vec::with_capacity(tensors.len());
    for (i, t) in tensors.iter().enumerate() {
        let end = tensors.get(i + 1).map_or(data_len, |next| next.offset);
        if t.offset % alignment != 0 || end < t.offset || end > data_len {
            return Err(fail(format!(
                "tensor {} lies outside its place in the data section",
                String::from_utf8_lossy(&t.name)
            )));
        }
        spans.push(end - t.offset);
    }
    let mut new_types = Vec::with_capacity(tensors.len());
    let mut new_lens = Vec::with_capacity(tensors.len());
    for (i, (t, &span)) in tensors.iter().zip(&spans).enumerate() {
        if t.ggml_type != GGML_Q5_0 {
            new_types.push(t.ggml_type);
            new_lens.push(span);
            continue;
        }
        let elements = t
            .dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| fail("a tensor's size overflows".into()))?;
        if t.dims.first().is_none_or(|d| d % BLOCK != 0) {
            return Err(fail("a Q5_0 tensor's rows are not whole blocks".into()));
        }
        let blocks = elements / BLOCK;
        let bytes = blocks * Q5_0_BYTES;
        let last = i + 1 == tensors.len();
        let fits = if last {
            bytes <= span
        } else {
            bytes.next_multiple_of(alignment) == span
        };
        if !fits {
            return Err(fail(format!(
                "Q5_0 tensor {} does not fill its place in the file ({bytes} bytes in {span})",
                String::from_utf8_lossy(&t.name)
            )));
        }
        new_types.push(GGML_Q8_0);
        new_lens.push(blocks * Q8_0_BYTES);
    }

    // Write: the metadata as it was, the tensor entries anew, padding, then the data.
    let mut source = header.inner;
    source.seek(SeekFrom::Start(0)).map_err(read_err)?;
    let out_file = File::create(output).map_err(|e| ModelError::io("creating", output, e))?;
    let mut out = BufWriter::new(out_file);
    let copied =
        std::io::copy(&mut (&mut source).take(metadata_len), &mut out).map_err(read_err)?;
    if copied != metadata_len {
        return Err(fail("its header changed while it was read".into()));
    }
    let mut written = metadata_len;
    let mut offset = 0u64;
    for (i, t) in tensors.iter().enumerate() {
        let mut entry = Vec::with_capacity(t.name.len() + 32 + 8 * t.dims.len());
        entry.extend_from_slice(&(t.name.len() as u64).to_le_bytes());
        entry.extend_from_slice(&t.name);
        entry.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        for d in &t.dims {
            entry.extend_from_slice(&d.to_le_bytes());
        }
        entry.extend_from_slice(&new_types[i].to_le_bytes());
        entry.extend_from_slice(&offset.to_le_bytes());
        out.write_all(&entry).map_err(write_err)?;
        written += entry.len() as u64;
        offset += new_lens[i].next_multiple_of(alignment);
    }
    pad(&mut out, &mut written, alignment).map_err(write_err)?;

    let mut widened = 0;
    for (i, t) in tensors.iter().enumerate() {
        source
            .seek(SeekFrom::Start(data_start + t.offset))
            .map_err(read_err)?;
        if new_types[i] != t.ggml_type {
            let mut block = [0u8; Q5_0_BYTES as usize];
            for _ in 0..new_lens[i] / Q8_0_BYTES {
                source.read_exact(&mut block).map_err(read_err)?;
                out.write_all(&q5_0_to_q8_0(&block)).map_err(write_err)?;
            }
            widened += 1;
        } else {
            let copied =
                std::io::copy(&mut (&mut source).take(spans[i]), &mut out).map_err(read_err)?;
            if copied != spans[i] {
                return Err(fail("its data is truncated".into()));
            }
        }
        written += new_lens[i];
        pad(&mut out, &mut written, alignment).map_err(write_err)?;
    }
    out.flush().map_err(write_err)?;
    Ok(Widened {
        tensors: widened,
        kept: tensors.len() - widened,
    })
}

/// Zero bytes up to the next multiple of `alignment`.
fn pad(out: &mut impl Write, written: &mut u64, alignment: u64) -> std::io::Result<()> {
    let to = written.next_multiple_of(alignment);
    std::io::copy(&mut std::io::repeat(0).take(to - *written), out)?;
    *written = to;
    Ok(())
}

/// One Q5_0 block as the Q8_0 block of the same 32 numbers (see the module doc).
fn q5_0_to_q8_0(block: &[u8; Q5_0_BYTES as usize]) -> [u8; Q8_0_BYTES as usize] {
    let mut out = [0u8; Q8_0_BYTES as usize];
    out[..2].copy_from_slice(&block[..2]);
    let high = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
    for j in 0..16 {
        let nibbles = block[6 + j];
        let low = (nibbles & 0x0F) | ((((high >> j) & 1) as u8) << 4);
        let up = (nibbles >> 4) | ((((high >> (j + 16)) & 1) as u8) << 4);
        out[2 + j] = (low as i8 - 16) as u8;
        out[2 + j + 16] = (up as i8 - 16) as u8;
    }
    out
}

#[cfg(test)]
mod tests;
