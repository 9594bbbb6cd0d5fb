//! Reads a CTranslate2 `model.bin` (binary version 6): a spec name, a list of named
//! tensors with shapes and dtypes, then aliases. The byte layout is in docs/MODELS.md
//! ("Appendix: the two Whisper file formats").

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// Element types as CTranslate2 numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 8-bit integer.
    I8,
    /// 16-bit integer.
    I16,
    /// 32-bit integer.
    I32,
    /// 16-bit float.
    F16,
}

impl DType {
    fn from_code(code: u8) -> Option<DType> {
        Some(match code {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
}

/// One named tensor.
#[derive(Debug, Clone)]
pub struct Var {
    /// Dimensions, outermost first (row-major, as PyTorch writes them).
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// Raw little-endian bytes.
    pub data: Vec<u8>,
}

impl Var {
    /// Rows `start..start + count` of the outermost dimension.
    pub fn rows(&self, start: usize, count: usize) -> Result<Var, String> {
        let outer = *self.shape.first().ok_or("a scalar has no rows")?;
        if start + count > outer {
            return Err(format!("rows {start}..{} of {outer}", start + count));
        }
        let row_bytes = self.data.len() / outer.max(1);
        let mut shape = self.shape.clone();
        shape[0] = count;
        Ok(Var {
            shape,
            dtype: self.dtype,
            data: self.data[start * row_bytes..(start + count) * row_bytes].to_vec(),
        })
    }

    /// The value of an integer scalar.
    pub fn scalar_int(&self) -> Option<i64> {
        let d = &self.data;
        Some(match self.dtype {
            DType::I8 => *d.first()? as i8 as i64,
            DType::I16 => i16::from_le_bytes(d.get(..2)?.try_into().ok()?) as i64,
            DType::I32 => i32::from_le_bytes(d.get(..4)?.try_into().ok()?) as i64,
            DType::F32 => f32::from_le_bytes(d.get(..4)?.try_into().ok()?) as i64,
            DType::F16 => half::f16::from_le_bytes(d.get(..2)?.try_into().ok()?).to_f32() as i64,
        })
    }
}

/// A parsed CTranslate2 model.
#[derive(Debug)]
pub struct Ct2Model {
    vars: HashMap<String, Var>,
    aliases: HashMap<String, String>,
}

impl Ct2Model {
    /// Reads a whole `model.bin`.
    pub fn read(path: &Path) -> Result<Ct2Model, String> {
        let file = File::open(path).map_err(|e| format!("cannot open it ({e})"))?;
        let mut r = BufReader::with_capacity(1 << 20, file);
        let version = read_u32(&mut r)?;
        if version != 6 {
            return Err(format!(
                "CTranslate2 binary version {version} is not supported (6 expected)"
            ));
        }
        let spec = read_string(&mut r)?;
        if spec != "WhisperSpec" {
            return Err(format!("it holds a `{spec}` model, not Whisper"));
        }
        let _revision = read_u32(&mut r)?;
        let count = read_u32(&mut r)?;
        let mut vars = HashMap::new();
        for _ in 0..count {
            let name = read_string(&mut r)?;
            let rank = read_u8(&mut r)?;
            let shape = (0..rank)
                .map(|_| read_u32(&mut r).map(|d| d as usize))
                .collect::<Result<Vec<_>, _>>()?;
            let code = read_u8(&mut r)?;
            let dtype =
                DType::from_code(code).ok_or(format!("`{name}` has unknown dtype {code}"))?;
            let nbytes = read_u32(&mut r)? as usize;
            let expected = shape.iter().product::<usize>() * dtype.size();
            if nbytes != expected {
                return Err(format!(
                    "`{name}` holds {nbytes} bytes, its shape {shape:?} needs {expected}"
                ));
            }
            let mut data = vec![0u8; nbytes];
            r.read_exact(&mut data).map_err(|_| truncated())?;
            vars.insert(name, Var { shape, dtype, data });
        }
        let alias_count = read_u32(&mut r)?;
        let mut aliases = HashMap::new();
        for _ in 0..alias_count {
            let alias = read_string(&mut r)?;
            let target = read_string(&mut r)?;
            aliases.insert(alias, target);
        }
        Ok(Ct2Model { vars, aliases })
    }

    /// The tensor called `name` (following aliases).
    pub fn get(&self, name: &str) -> Result<&Var, String> {
        let resolved = self.aliases.get(name).map_or(name, String::as_str);
        self.vars
            .get(resolved)
            .ok_or_else(|| format!("the model has no tensor `{name}`"))
    }

    /// True when a tensor of that name exists.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_ok()
    }
}

fn truncated() -> String {
    "the file ends too early (truncated?)".into()
}

fn read_u8(r: &mut impl Read) -> Result<u8, String> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b).map_err(|_| truncated())?;
    Ok(b[0])
}

fn read_u32(r: &mut impl Read) -> Result<u32, String> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b).map_err(|_| truncated())?;
    Ok(u32::from_le_bytes(b))
}

/// A u16 length that counts a trailing NUL, then the bytes.
fn read_string(r: &mut impl Read) -> Result<String, String> {
    let mut len = [0u8; 2];
    r.read_exact(&mut len).map_err(|_| truncated())?;
    let mut bytes = vec![0u8; u16::from_le_bytes(len) as usize];
    r.read_exact(&mut bytes).map_err(|_| truncated())?;
    if bytes.last() == Some(&0) {
        bytes.pop();
    }
    String::from_utf8(bytes).map_err(|_| "a tensor name is not UTF-8".to_string())
}

/// Writes CTranslate2 files, for tests that need a small Whisper model.
#[cfg(test)]
pub(crate) mod writer {
    use super::DType;

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend(((s.len() + 1) as u16).to_le_bytes());
        out.extend(s.as_bytes());
        out.push(0);
    }

    /// A `model.bin` with these (name, shape, dtype, bytes) variables and aliases.
    pub(crate) fn model_bin(
        vars: &[(String, Vec<usize>, DType, Vec<u8>)],
        aliases: &[(&str, &str)],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(6u32.to_le_bytes());
        string(&mut out, "WhisperSpec");
        out.extend(3u32.to_le_bytes());
        out.extend((vars.len() as u32).to_le_bytes());
        for (name, shape, dtype, data) in vars {
            string(&mut out, name);
            out.push(shape.len() as u8);
            for d in shape {
                out.extend((*d as u32).to_le_bytes());
            }
            out.push(match dtype {
                DType::F32 => 0,
                DType::I8 => 1,
                DType::I16 => 2,
                DType::I32 => 3,
                DType::F16 => 4,
            });
            out.extend((data.len() as u32).to_le_bytes());
            out.extend(data);
        }
        out.extend((aliases.len() as u32).to_le_bytes());
        for (a, t) in aliases {
            string(&mut out, a);
            string(&mut out, t);
        }
        out
    }
}
