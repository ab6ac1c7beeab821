//! Reading commands: two words on the command line, hex text (one command per line), or a raw
//! queue dump (16-byte little-endian entries, as the SMMU reads them from memory, §4.1.1).

use crate::error::Error;
use serde::Serialize;
use smmu_model::command::RawCommand;

/// Where a command came from, so that a report can point back at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// WORD0 WORD1 on the command line.
    Args,
    /// A line (1-based) of a hex text file.
    Line(usize),
    /// A byte offset into a binary queue dump.
    Offset(usize),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Args => write!(f, "arguments"),
            Origin::Line(n) => write!(f, "line {n}"),
            Origin::Offset(o) => write!(f, "offset 0x{o:x}"),
        }
    }
}

/// One command read from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub raw: RawCommand,
    pub origin: Origin,
}

/// One 64-bit word in hex: `0x` optional, `_` allowed between digits (as in `0x1234_5678`),
/// leading zeros ignored. `at` names the word in errors ("WORD0", "cmds.txt: line 3").
pub fn parse_word(token: &str, at: &str) -> Result<u64, Error> {
    let digits = token
        .strip_prefix("0x")
        .or_else(|| token.strip_prefix("0X"))
        .unwrap_or(token);
    let bad = |why: String| Error::NotHex {
        at: at.to_string(),
        token: token.to_string(),
        why,
    };
    if digits.is_empty() {
        return Err(bad("no digits".into()));
    }
    if let Some(c) = digits.chars().find(|c| !c.is_ascii_hexdigit() && *c != '_') {
        return Err(bad(format!("'{}' is not a hex digit", c.escape_debug())));
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if clean.is_empty() {
        return Err(bad("no digits".into()));
    }
    let significant = clean.trim_start_matches('0');
    if significant.len() > 16 {
        return Err(Error::TooWide {
            at: at.to_string(),
            token: token.to_string(),
        });
    }
    if significant.is_empty() {
        return Ok(0);
    }
    // Cannot fail: at most 16 hex digits, all checked above.
    u64::from_str_radix(significant, 16).map_err(|e| bad(e.to_string()))
}

/// A 32-bit ID register value given as `--idr0 HEX` and the like.
pub fn parse_register(flag: &'static str, token: &str) -> Result<u32, Error> {
    let v = parse_word(token, flag).map_err(|e| Error::BadRegister {
        flag,
        token: token.to_string(),
        why: match e {
            Error::TooWide { .. } => "wider than 64 bits".to_string(),
            Error::NotHex { why, .. } => why,
            other => other.to_string(),
        },
    })?;
    u32::try_from(v).map_err(|_| Error::BadRegister {
        flag,
        token: token.to_string(),
        why: "wider than 32 bits".to_string(),
    })
}

/// The command given as WORD0 WORD1 on the command line.
pub fn parse_args(words: &[String]) -> Result<Entry, Error> {
    match words {
        [w0, w1] => Ok(Entry {
            raw: RawCommand::new(parse_word(w0, "WORD0")?, parse_word(w1, "WORD1")?),
            origin: Origin::Args,
        }),
        _ => Err(Error::ArgCount(words.len())),
    }
}

/// Hex text: one command per line as two 64-bit words, DW0 then DW1, separated by spaces, tabs or
/// a comma. Blank lines are skipped and `#` starts a comment that runs to the end of the line.
pub fn parse_text(name: &str, text: &str) -> Result<Vec<Entry>, Error> {
    let mut out = Vec::new();
    // Editors on some hosts save a byte order mark; it is not part of the first word.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let code = line.split('#').next().unwrap_or("");
        let words: Vec<&str> = code
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
            .collect();
        if words.is_empty() {
            continue;
        }
        let at = format!("{name}: line {n}");
        if words.len() != 2 {
            return Err(Error::WordCount {
                at,
                found: words.len(),
            });
        }
        out.push(Entry {
            raw: RawCommand::new(parse_word(words[0], &at)?, parse_word(words[1], &at)?),
            origin: Origin::Line(n),
        });
    }
    Ok(out)
}

/// A raw queue dump: consecutive 16-byte little-endian entries (DW0 first, §4.1.1).
pub fn parse_binary(name: &str, bytes: &[u8]) -> Result<Vec<Entry>, Error> {
    let chunks = bytes.chunks_exact(16);
    if !chunks.remainder().is_empty() {
        return Err(Error::Truncated {
            name: name.to_string(),
            len: bytes.len(),
            whole: bytes.len() / 16,
            rem: chunks.remainder().len(),
        });
    }
    Ok(chunks
        .enumerate()
        .map(|(i, c)| {
            let mut b = [0u8; 16];
            b.copy_from_slice(c);
            Entry {
                raw: RawCommand::from_bytes(&b),
                origin: Origin::Offset(i * 16),
            }
        })
        .collect())
}

/// Whether input is hex text rather than a binary dump: valid UTF-8 with no control characters
/// other than tab, CR and LF. A real queue dump almost always has a NUL or a high byte (opcodes sit
/// in byte 0 and most fields are small), so this guess is safe; `--binary` settles it otherwise.
pub fn looks_like_text(bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(s) => s
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r')),
        Err(_) => false,
    }
}

/// Commands from the bytes of a file (or stdin) named `name` in errors.
pub fn parse_input(name: &str, bytes: &[u8], force_binary: bool) -> Result<Vec<Entry>, Error> {
    if force_binary || !looks_like_text(bytes) {
        parse_binary(name, bytes)
    } else {
        // looks_like_text checked UTF-8 already.
        parse_text(name, std::str::from_utf8(bytes).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(parse_word("0x12", "w").unwrap(), 0x12);
        assert_eq!(parse_word("12", "w").unwrap(), 0x12);
        assert_eq!(parse_word("0XFFFF_ffff_FFFF_ffff", "w").unwrap(), u64::MAX);
        assert_eq!(parse_word("000000000000000000001", "w").unwrap(), 1);
        assert_eq!(parse_word("0x0", "w").unwrap(), 0);
        assert!(matches!(
            parse_word("0x1_0000_0000_0000_0000", "w"),
            Err(Error::TooWide { .. })
        ));
        for bad in ["", "0x", "xyz", "0x12g", "-1", "0x_"] {
            assert!(
                matches!(parse_word(bad, "w"), Err(Error::NotHex { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn text_lines_and_comments() {
        let t = "# a queue\n\n0x12 0x1000 # TLBI\n  46,0\n";
        let e = parse_text("t", t).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].raw, RawCommand::new(0x12, 0x1000));
        assert_eq!(e[0].origin, Origin::Line(3));
        assert_eq!(e[1].raw, RawCommand::new(0x46, 0));
        let bom = parse_text("t", "\u{feff}0x46 0\r\n").unwrap();
        assert_eq!(bom[0].raw, RawCommand::new(0x46, 0));
        let err = parse_text("t", "1 2\n1 2 3\n").unwrap_err().to_string();
        assert_eq!(
            err,
            "t: line 2: expected two 64-bit hex words (DW0 DW1), found 3"
        );
    }

    #[test]
    fn binary_entries() {
        let mut b = RawCommand::new(0x46, 7).to_bytes().to_vec();
        b.extend_from_slice(&RawCommand::new(0x12, 1).to_bytes());
        let e = parse_input("b", &b, false).unwrap();
        assert_eq!(e[1].raw, RawCommand::new(0x12, 1));
        assert_eq!(e[1].origin, Origin::Offset(16));
        let err = parse_binary("b", &b[..20]).unwrap_err().to_string();
        assert!(err.contains("20 bytes"), "{err}");
    }
}
