//! Trace replay: request arrival times and lengths read from a public trace format.
//!
//! Three formats are read (see docs/architecture.md for where the public traces live):
//! - `mooncake`: JSONL, one `{"timestamp": ms, "input_length", "output_length", "hash_ids"}`
//!   per line; each hash id is one block of [`MOONCAKE_BLOCK`] prompt tokens (the last block may
//!   be partial), equal ids are equal prompt blocks.
//! - `azure`: CSV `TIMESTAMP,ContextTokens,GeneratedTokens`, TIMESTAMP a datetime.
//! - `burstgpt`: CSV `Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type`,
//!   Timestamp in seconds; rows with 0 response tokens are failures in the log and are skipped.
//!
//! Offsets are relative to the first request kept, so the replay starts at once.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};

use super::synthetic::push_words;
use super::{Prompt, RequestSpec, Workload};
use crate::rng::mix64 as mix;

/// Tokens per Mooncake hash id (the trace's convention).
pub const MOONCAKE_BLOCK: u64 = 512;

/// A trace file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    /// Mooncake (kvcache-ai/Mooncake) JSONL with hash ids.
    Mooncake,
    /// Azure LLM inference trace CSV (Azure/AzurePublicDataset).
    Azure,
    /// BurstGPT CSV (HPMLL/BurstGPT).
    BurstGpt,
}

impl TraceFormat {
    /// The name as given to `--trace-format` and written to the result.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mooncake => "mooncake",
            Self::Azure => "azure",
            Self::BurstGpt => "burstgpt",
        }
    }

    /// Parses a `--trace-format` value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "mooncake" => Some(Self::Mooncake),
            "azure" => Some(Self::Azure),
            "burstgpt" => Some(Self::BurstGpt),
            _ => None,
        }
    }
}

/// One request of a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRow {
    /// Send offset from the first kept request (before speed-up).
    pub offset: Duration,
    /// Prompt tokens.
    pub input: u64,
    /// Output tokens (`max_tokens`).
    pub output: u64,
    /// Mooncake prompt blocks (empty for other formats).
    pub hash_ids: Vec<u64>,
    /// 1-based line in the file.
    pub line: usize,
}

/// A trace as read.
#[derive(Debug, Clone)]
pub struct Trace {
    /// Requests in time order.
    pub rows: Vec<TraceRow>,
    /// Failure rows left out (BurstGPT rows with 0 response tokens).
    pub skipped: u64,
    /// Format read.
    pub format: TraceFormat,
}

/// Guesses the format from the file's extension and header: `.jsonl` is Mooncake; a CSV header
/// starting `TIMESTAMP,ContextTokens` is Azure and one starting `Timestamp,Model` is BurstGPT.
pub fn detect(path: &Path, text: &str) -> Option<TraceFormat> {
    let head = text.lines().next().unwrap_or("").trim();
    if path.extension().is_some_and(|e| e == "jsonl") || head.starts_with('{') {
        return Some(TraceFormat::Mooncake);
    }
    if head.starts_with("TIMESTAMP,ContextTokens") {
        return Some(TraceFormat::Azure);
    }
    if head.starts_with("Timestamp,Model") {
        return Some(TraceFormat::BurstGpt);
    }
    None
}

/// Reads `path` as `format` (`None`: [`detect`]). Errors name the file and line.
pub fn load(path: &Path, format: Option<TraceFormat>) -> anyhow::Result<Trace> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--trace {}: cannot read", path.display()))?;
    let format = match format.or_else(|| detect(path, &text)) {
        Some(f) => f,
        None => bail!(
            "--trace {}: cannot tell the format (not .jsonl, no Azure or BurstGPT header); give --trace-format mooncake|azure|burstgpt",
            path.display()
        ),
    };
    let at = |line: usize| format!("--trace {}:{line}", path.display());
    let trace = parse(&text, format).map_err(|(line, e)| anyhow::anyhow!("{}: {e}", at(line)))?;
    if trace.rows.is_empty() {
        bail!("--trace {}: no requests in the trace", path.display());
    }
    Ok(trace)
}

type LineErr = (usize, String);

/// Parses a whole trace; errors carry the 1-based line.
pub fn parse(text: &str, format: TraceFormat) -> Result<Trace, LineErr> {
    let mut raw: Vec<(f64, TraceRow)> = Vec::new();
    let mut skipped = 0;
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
    let header: Vec<String> = match format {
        TraceFormat::Mooncake => Vec::new(),
        _ => {
            let (_, h) = lines.next().ok_or((1, "empty file".to_string()))?;
            h.split(',').map(|s| s.trim().to_string()).collect()
        }
    };
    let col = |name: &str| -> Result<usize, LineErr> {
        header
            .iter()
            .position(|h| h == name)
            .ok_or((1, format!("header has no {name:?} column")))
    };
    let cols = match format {
        TraceFormat::Mooncake => Vec::new(),
        TraceFormat::Azure => vec![
            col("TIMESTAMP")?,
            col("ContextTokens")?,
            col("GeneratedTokens")?,
        ],
        TraceFormat::BurstGpt => vec![
            col("Timestamp")?,
            col("Request tokens")?,
            col("Response tokens")?,
        ],
    };
    for (line, l) in lines {
        if l.is_empty() {
            continue;
        }
        let row = match format {
            TraceFormat::Mooncake => mooncake_row(l),
            _ => csv_row(l, &cols, format),
        }
        .map_err(|e| (line, e))?;
        let Some((t, input, output, hash_ids)) = row else {
            skipped += 1;
            continue;
        };
        if input == 0 {
            return Err((line, "input length is 0".into()));
        }
        if output == 0 {
            return Err((line, "output length is 0".into()));
        }
        if let Some((prev, _)) = raw.last()
            && t < *prev
        {
            return Err((
                line,
                format!(
                    "timestamp {t} is earlier than the row before ({prev}): rows must be in time order"
                ),
            ));
        }
        let r = TraceRow {
            offset: Duration::ZERO,
            input,
            output,
            hash_ids,
            line,
        };
        raw.push((t, r));
    }
    let t0 = raw.first().map_or(0.0, |(t, _)| *t);
    let rows = raw
        .into_iter()
        .map(|(t, mut r)| {
            r.offset = Duration::from_secs_f64(t - t0);
            r
        })
        .collect();
    Ok(Trace {
        rows,
        skipped,
        format,
    })
}

/// (time in seconds, input, output, hash ids); `None` for a skipped row.
type Parsed = Option<(f64, u64, u64, Vec<u64>)>;

fn mooncake_row(l: &str) -> Result<Parsed, String> {
    #[derive(serde::Deserialize)]
    struct Row {
        timestamp: f64,
        input_length: u64,
        output_length: u64,
        #[serde(default)]
        hash_ids: Vec<u64>,
    }
    let r: Row = serde_json::from_str(l).map_err(|e| format!("not a Mooncake row: {e}"))?;
    if !(r.timestamp >= 0.0 && r.timestamp.is_finite()) {
        return Err(format!("timestamp {} is not a time", r.timestamp));
    }
    if r.hash_ids.len() as u64 > r.input_length.div_ceil(MOONCAKE_BLOCK) {
        return Err(format!(
            "{} hash ids are more {MOONCAKE_BLOCK}-token blocks than input_length {} fills",
            r.hash_ids.len(),
            r.input_length
        ));
    }
    Ok(Some((
        r.timestamp / 1e3,
        r.input_length,
        r.output_length,
        r.hash_ids,
    )))
}

fn csv_row(l: &str, cols: &[usize], format: TraceFormat) -> Result<Parsed, String> {
    let fields: Vec<&str> = l.split(',').map(str::trim).collect();
    let get = |i: usize| -> Result<&str, String> {
        fields
            .get(cols[i])
            .copied()
            .ok_or_else(|| format!("expected at least {} columns", cols[i] + 1))
    };
    let int = |i: usize, what: &str| -> Result<u64, String> {
        let s = get(i)?;
        s.parse::<u64>()
            .or_else(|_| {
                // BurstGPT writes some counts as floats ("12.0").
                s.parse::<f64>()
                    .ok()
                    .filter(|x| *x >= 0.0 && x.fract() == 0.0 && x.is_finite())
                    .map(|x| x as u64)
                    .ok_or(())
            })
            .map_err(|_| format!("{what} {s:?} is not a whole number"))
    };
    let t = match format {
        TraceFormat::Azure => {
            let s = get(0)?;
            let dt =
                chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").map_err(|e| {
                    format!(
                        "TIMESTAMP {s:?} is not a datetime like 2023-11-16 18:15:46.6805900: {e}"
                    )
                })?;
            let ts = dt.and_utc();
            ts.timestamp() as f64 + ts.timestamp_subsec_nanos() as f64 / 1e9
        }
        _ => {
            let s = get(0)?;
            s.parse::<f64>()
                .ok()
                .filter(|x| *x >= 0.0 && x.is_finite())
                .ok_or_else(|| format!("Timestamp {s:?} is not a number of seconds"))?
        }
    };
    let (input_name, output_name) = match format {
        TraceFormat::Azure => ("ContextTokens", "GeneratedTokens"),
        _ => ("Request tokens", "Response tokens"),
    };
    let input = int(1, input_name)?;
    let output = int(2, output_name)?;
    if format == TraceFormat::BurstGpt && output == 0 {
        return Ok(None);
    }
    Ok(Some((t, input, output, Vec::new())))
}

/// Prompts of the trace's lengths: a Mooncake row's prompt is its blocks (each hash id a
/// deterministic run of [`MOONCAKE_BLOCK`] words, so equal ids give equal text) cut to its
/// input length, then words unique to the row if the blocks fall short; other formats' prompts
/// are unique words. `max_tokens` is the row's output length.
#[derive(Debug, Clone)]
pub struct TraceWorkload {
    /// The rows sent, in order.
    pub rows: Vec<TraceRow>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Seed of the words.
    pub seed: u64,
}

impl TraceWorkload {
    /// Send offsets of the rows at `speedup` times the trace's pace.
    pub fn offsets(&self, speedup: f64) -> Vec<Duration> {
        self.rows
            .iter()
            .map(|r| Duration::from_secs_f64(r.offset.as_secs_f64() / speedup))
            .collect()
    }
}

impl Workload for TraceWorkload {
    fn get(&self, index: u64) -> RequestSpec {
        let r = &self.rows[(index % self.rows.len() as u64) as usize];
        let mut s = String::new();
        let mut left = r.input;
        for id in &r.hash_ids {
            let n = left.min(MOONCAKE_BLOCK);
            push_words(&mut s, n as usize, mix(self.seed ^ mix(id ^ 0xb10c)));
            left -= n;
        }
        // The rest starts with a word that depends on the index: no accidental sharing.
        let unique = mix(self
            .seed
            .wrapping_add(index.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            ^ 0x7ace);
        push_words(&mut s, left as usize, unique);
        RequestSpec {
            images: Vec::new(),
            tools: None,
            audio: Vec::new(),
            prompt: Prompt::Text(s),
            max_tokens: Some(r.output.min(u32::MAX as u64) as u32),
            temperature: self.temperature,
        }
    }
    fn len(&self) -> Option<u64> {
        Some(self.rows.len() as u64)
    }
    /// A warm-up request: a row's lengths, but words of its own, so warming up never puts a
    /// measured request's blocks in the server's prefix cache.
    fn get_warmup(&self, index: u64) -> RequestSpec {
        let r = &self.rows[(index % self.rows.len() as u64) as usize];
        let mut s = String::new();
        push_words(
            &mut s,
            r.input as usize,
            mix(self.seed ^ mix(index ^ 0x3a53_0000)),
        );
        RequestSpec {
            images: Vec::new(),
            tools: None,
            audio: Vec::new(),
            prompt: Prompt::Text(s),
            max_tokens: Some(r.output.min(u32::MAX as u64) as u32),
            temperature: self.temperature,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::text::count;

    #[test]
    fn mooncake_rows_become_offsets_lengths_and_blocks() {
        let t = parse(
            "{\"timestamp\": 1000, \"input_length\": 600, \"output_length\": 5, \"hash_ids\": [1, 2]}\n\
             \n\
             {\"timestamp\": 1250, \"input_length\": 700, \"output_length\": 7, \"hash_ids\": [1, 3]}\n",
            TraceFormat::Mooncake,
        )
        .unwrap();
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[0].offset, Duration::ZERO);
        assert_eq!(t.rows[1].offset, Duration::from_millis(250));
        assert_eq!((t.rows[1].input, t.rows[1].output), (700, 7));
        assert_eq!(t.rows[1].line, 3);
        let w = TraceWorkload {
            rows: t.rows,
            temperature: None,
            seed: 1,
        };
        let (a, b) = (w.get(0), w.get(1));
        assert_eq!(a.max_tokens, Some(5));
        let (a, b) = (a.prompt.text(), b.prompt.text());
        assert_eq!((count(&a), count(&b)), (600, 700));
        let wa: Vec<&str> = a.split(' ').collect();
        let wb: Vec<&str> = b.split(' ').collect();
        // Block 1 is shared; blocks 2 and 3 differ.
        assert_eq!(wa[..512], wb[..512]);
        assert_ne!(wa[512..600], wb[512..600]);
        assert_eq!(
            w.offsets(2.0),
            vec![Duration::ZERO, Duration::from_millis(125)]
        );
    }

    #[test]
    fn azure_timestamps_are_offsets_from_the_first_row() {
        let t = parse(
            "TIMESTAMP,ContextTokens,GeneratedTokens\n\
             2023-11-16 18:15:46.6805900,374,44\n\
             2023-11-16 18:15:47.1805900,396,109\n",
            TraceFormat::Azure,
        )
        .unwrap();
        assert_eq!(t.rows[1].offset, Duration::from_millis(500));
        assert_eq!((t.rows[0].input, t.rows[0].output), (374, 44));
        let e = parse(
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,374,44\nyesterday,1,2\n",
            TraceFormat::Azure,
        )
        .unwrap_err();
        assert_eq!(e.0, 3, "{e:?}");
        assert!(e.1.contains("TIMESTAMP"), "{e:?}");
    }

    #[test]
    fn burstgpt_failure_rows_are_skipped_and_counted() {
        let t = parse(
            "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n\
             5,ChatGPT,472,18,490,Conversation log\n\
             6.5,GPT-4,1087,0,1087,Conversation log\n\
             7.25,ChatGPT,300,20.0,320,API log\n",
            TraceFormat::BurstGpt,
        )
        .unwrap();
        assert_eq!(t.skipped, 1);
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[1].offset, Duration::from_millis(2250));
        assert_eq!(
            (t.rows[1].input, t.rows[1].output, t.rows[1].line),
            (300, 20, 4)
        );
        let e = parse(
            "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n5,ChatGPT,many,18,490,x\n",
            TraceFormat::BurstGpt,
        )
        .unwrap_err();
        assert_eq!(e.0, 2);
        assert!(e.1.contains("Request tokens"), "{e:?}");
    }

    #[test]
    fn bad_rows_name_their_line_and_the_file() {
        let e = parse(
            "{\"timestamp\": 0, \"input_length\": 10, \"output_length\": 1}\n{\"timestamp\": 5}\n",
            TraceFormat::Mooncake,
        )
        .unwrap_err();
        assert_eq!(e.0, 2);
        let e = parse(
            "{\"timestamp\": 9, \"input_length\": 10, \"output_length\": 1}\n{\"timestamp\": 5, \"input_length\": 10, \"output_length\": 1}\n",
            TraceFormat::Mooncake,
        )
        .unwrap_err();
        assert!(e.0 == 2 && e.1.contains("time order"), "{e:?}");
        let dir = std::env::temp_dir().join(format!("llmbench-trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("bad.csv");
        std::fs::write(
            &p,
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.1,x,4\n",
        )
        .unwrap();
        let msg = format!("{:#}", load(&p, None).unwrap_err());
        assert!(msg.contains(&format!("{}:2", p.display())), "{msg}");
        assert!(msg.contains("ContextTokens"), "{msg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_shipped_samples_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/traces");
        for (f, fmt) in [
            ("mooncake_sample.jsonl", TraceFormat::Mooncake),
            ("azure_sample.csv", TraceFormat::Azure),
            ("burstgpt_sample.csv", TraceFormat::BurstGpt),
        ] {
            let t = load(&root.join(f), None).unwrap();
            assert_eq!(t.format, fmt, "{f}");
            assert!((20..=50).contains(&t.rows.len()), "{f}: {}", t.rows.len());
        }
    }
}
