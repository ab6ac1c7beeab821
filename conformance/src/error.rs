//! The one error type of the tool. Every variant is bad input from the user (exit status 2) except
//! [`Error::Write`]; each renders as a single line so that `smmu-conform: error: ...` stays one
//! line on stderr, which scripts and CI logs can grep.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{at}: '{token}' is not a hex number ({why})")]
    NotHex {
        at: String,
        token: String,
        why: String,
    },
    #[error("{at}: '{token}' is wider than 64 bits")]
    TooWide { at: String, token: String },
    #[error("{at}: expected two 64-bit hex words (DW0 DW1), found {found}")]
    WordCount { at: String, found: usize },
    #[error(
        "decode takes two words, DW0 (bits [63:0]) and DW1 (bits [127:64]), got {0}; \
         use --file FILE or - for a list of commands"
    )]
    ArgCount(usize),
    #[error("nothing to decode: give WORD0 WORD1, --file FILE, or - to read standard input")]
    NoInput,
    #[error("give either WORD0 WORD1 or --file, not both")]
    ArgsAndFile,
    #[error(
        "{name}: {len} bytes is not a whole number of 16-byte commands \
         ({rem} bytes left over after {whole} commands)"
    )]
    Truncated {
        name: String,
        len: usize,
        whole: usize,
        rem: usize,
    },
    #[error("cannot read {name}: {source}")]
    Read {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("unknown profile '{name}' (known: {known})")]
    UnknownProfile { name: String, known: String },
    #[error("{0}")]
    UnknownQueue(String),
    #[error("{flag}: '{token}' is not a 32-bit hex register value ({why})")]
    BadRegister {
        flag: &'static str,
        token: String,
        why: String,
    },
    #[error("{0}")]
    Suite(#[from] crate::suite::SuiteError),
    #[error("no mutants are available in this build (the reference emulator backend is not wired in yet)")]
    NoMutants,
    /// `fuzz` could not start or carry on (bad option, backend would not open, output
    /// directory not writable): exit 2 like any harness failure.
    #[error("fuzz: {0}")]
    Fuzz(String),
    #[error("cannot write output: {0}")]
    Write(#[from] io::Error),
}

impl Error {
    /// The process exit status for this error: 2 for bad input (as clap uses for usage errors),
    /// 1 when the output could not be written.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Write(_) => 1,
            _ => 2,
        }
    }

    /// A closed pipe (`smmu-conform decode -f big.txt | head`) is how the reader says it has seen
    /// enough, not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Write(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}
