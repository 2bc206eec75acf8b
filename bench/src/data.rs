//! Test data, generated at run time (never committed): random bytes, and
//! UTF-8 text that mixes 1- to 4-byte characters so chunk cuts land inside
//! characters and must move back to a boundary.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::Path;

use anyhow::Result;

const BLOCK: usize = 8 << 20;

pub fn random_file(path: &Path, size: u64, seed: u64) -> Result<()> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut f = File::create(path)?;
    let mut block = vec![0u8; BLOCK];
    let mut left = size;
    while left > 0 {
        let k = left.min(BLOCK as u64) as usize;
        rng.fill(&mut block[..k]);
        f.write_all(&block[..k])?;
        left -= k as u64;
    }
    f.sync_all()?;
    Ok(())
}

/// About `size` bytes (never more) of words in Latin, Cyrillic, Greek, CJK and
/// emoji, with punctuation and line breaks.
pub fn text_file(path: &Path, size: u64, seed: u64) -> Result<()> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let scripts: [&[char]; 5] = [
        &['a', 'e', 'i', 'o', 'u', 'n', 's', 't', 'r', 'l', 'é', 'ü', 'ß'],
        &['а', 'б', 'в', 'г', 'д', 'е', 'ж', 'з', 'и', 'к', 'л', 'м'],
        &['α', 'β', 'γ', 'δ', 'ε', 'ζ', 'η', 'θ', 'λ', 'μ', 'π', 'ω'],
        &['日', '本', '語', '文', '字', '中', '国', '汉', '東', '京', '雨', '雪'],
        &['😀', '🎉', '🚀', '🌍', '🦀', '📦', '✨', '🔒'],
    ];
    let words: Vec<String> = (0..4096)
        .map(|_| {
            let script = scripts[rng.usize(..scripts.len())];
            (0..rng.usize(1..10)).map(|_| script[rng.usize(..script.len())]).collect()
        })
        .collect();
    let mut out = BufWriter::with_capacity(BLOCK, File::create(path)?);
    let (mut written, mut line) = (0u64, 0usize);
    loop {
        let w = &words[rng.usize(..words.len())];
        let sep: &str = if line > 72 {
            line = 0;
            if rng.u8(..8) == 0 {
                ".\n\n"
            } else {
                "\n"
            }
        } else if rng.u8(..12) == 0 {
            ", "
        } else {
            " "
        };
        let n = (w.len() + sep.len()) as u64;
        if written + n > size {
            break;
        }
        out.write_all(w.as_bytes())?;
        out.write_all(sep.as_bytes())?;
        written += n;
        line += w.chars().count() + 1;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

/// About `size` bytes (never more) of text in which many bytes need a JSON
/// escape, as in source code, logs and JSON files: a newline every ~40
/// bytes or less, tab indents, quoted strings and keys, backslashes in
/// paths, some non-ASCII: 13% of its bytes need an escape (chunkcast's own
/// sources: 3%, a newline every 40 bytes; a JSON log: 10-15%).
pub fn escaped_text_file(path: &Path, size: u64, seed: u64) -> Result<()> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let lines: [&str; 10] = [
        "\tlet path = \"C:\\\\data\\\\logs\";\n",
        "\tfor line in reader.lines() {\n",
        "{\"level\":\"info\",\"msg\":\"café ok\"}\n",
        "\t\tif count > limit { break; }\n",
        "2026-12-06T06:00:00Z WARN disk 数据 full\n",
        "\t// a comment that explains why, not what\n",
        "\t\"key\": \"value with spaces\",\n",
        "\t\treturn Err(Error::Io(e));\n",
        "}\n",
        "\n",
    ];
    let mut out = BufWriter::with_capacity(BLOCK, File::create(path)?);
    let mut written = 0u64;
    loop {
        let line = lines[rng.usize(..lines.len())];
        if written + line.len() as u64 > size {
            break;
        }
        out.write_all(line.as_bytes())?;
        written += line.len() as u64;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}
