//! The records file (`--records`): one JSON line per finished request, written as the run
//! goes, and read back by `summarize` and the tests.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;

use crate::measure::record::Record;
use crate::results::file::RunStatus;

/// The records file's last line, written when the run ends: `{"run_end": {...}}`. A file
/// without it was cut short (the run was killed); `summarize` says so.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunEnd {
    /// The run's id.
    pub run_id: String,
    /// How it ended.
    pub status: RunStatus,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct EndLine {
    run_end: RunEnd,
}

/// The end line, if `line` is one.
fn end_line(line: &[u8]) -> Option<RunEnd> {
    if !line.trim_ascii_start().starts_with(b"{\"run_end\"") {
        return None;
    }
    serde_json::from_slice::<EndLine>(line)
        .ok()
        .map(|e| e.run_end)
}

/// What a records file holds.
pub struct RecordsRead {
    /// Every whole record.
    pub records: Vec<Record>,
    /// What was left out (a cut last line), if anything.
    pub note: Option<String>,
    /// The run's end line; `None` when the run did not finish writing.
    pub end: Option<RunEnd>,
}

/// Writes one JSON line per record, each with a single `write` to the OS, so a killed run
/// (even `kill -9`) leaves only whole lines. The writes happen on a thread of their own, fed
/// through a bounded channel: the async collector never blocks on the disk, and a disk slower
/// than the run holds the collector back instead of filling memory.
pub struct RecordWriter {
    tx: Option<tokio::sync::mpsc::Sender<Vec<u8>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The first write failure, set by the writer thread.
    failed: Arc<Mutex<Option<String>>>,
}

/// Lines waiting for the writer thread at most.
const PENDING_LINES: usize = 4096;

impl RecordWriter {
    /// Creates (truncates) the file, and checks a byte can be written to it (a full disk or a
    /// read-only target fails here, before the run, not after it).
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let mut file = File::create(path)
            .with_context(|| format!("--records: cannot create {}", path.display()))?;
        file.write_all(b"\n")
            .and_then(|_| file.flush())
            .with_context(|| format!("--records: cannot write to {}", path.display()))?;
        if file.metadata().map(|m| m.is_file()).unwrap_or(false) {
            file.set_len(0)
                .and_then(|_| std::io::Seek::rewind(&mut file))
                .with_context(|| format!("--records: cannot write to {}", path.display()))?;
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(PENDING_LINES);
        let failed = Arc::new(Mutex::new(None));
        let slot = failed.clone();
        let thread = std::thread::Builder::new()
            .name("llmbench-records".into())
            .spawn(move || {
                // Bytes of whole lines in the file: a write that fails part-way (a full disk)
                // is cut back to the last whole line.
                let mut whole = 0u64;
                while let Some(line) = rx.blocking_recv() {
                    if let Err(e) = file.write_all(&line) {
                        let _ = file.set_len(whole);
                        *slot.lock().unwrap() = Some(e.to_string());
                        return;
                    }
                    whole += line.len() as u64;
                }
            })
            .context("cannot start the records writer")?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            failed,
        })
    }

    fn failure(&self) -> Option<anyhow::Error> {
        let e = self.failed.lock().unwrap().clone()?;
        Some(anyhow::anyhow!("cannot write to the records file: {e}"))
    }

    /// Appends one line (handed to the OS in one write, on the writer thread). Fails once a
    /// write has failed; the lines after a failure are not written.
    pub async fn write(&mut self, record: &Record) -> anyhow::Result<()> {
        if let Some(e) = self.failure() {
            return Err(e);
        }
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        let tx = self.tx.as_ref().context("records file already closed")?;
        if tx.send(line).await.is_err() {
            // The writer stopped: it failed.
            return Err(self
                .failure()
                .unwrap_or_else(|| anyhow::anyhow!("the records writer stopped")));
        }
        Ok(())
    }

    /// Writes the run's end line, what is pending, and closes the file; the first write
    /// failure, if any.
    pub async fn end(self, end: RunEnd) -> anyhow::Result<()> {
        if self.failure().is_none()
            && let Some(tx) = &self.tx
        {
            let mut line = serde_json::to_vec(&EndLine { run_end: end })?;
            line.push(b'\n');
            let _ = tx.send(line).await;
        }
        self.finish()
    }

    /// Writes what is pending and closes the file; the first write failure, if any.
    pub fn finish(mut self) -> anyhow::Result<()> {
        self.close();
        match self.failure() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn close(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RecordWriter {
    fn drop(&mut self) {
        self.close();
    }
}

/// Reads a records file; a broken line is an error naming the file and line.
pub fn read_records(path: &Path) -> anyhow::Result<Vec<Record>> {
    let file =
        File::open(path).with_context(|| format!("cannot open records file {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}: cannot read", path.display(), i + 1))?;
        if line.trim().is_empty() || end_line(line.as_bytes()).is_some() {
            continue;
        }
        let rec: Record = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not a record", path.display(), i + 1))?;
        out.push(rec);
    }
    Ok(out)
}

/// Reads a records file written by a run that may have been killed: a last line that does not
/// parse (cut by the kill) is left out and reported; a broken line elsewhere is an error.
pub fn read_records_tolerant(path: &Path) -> anyhow::Result<RecordsRead> {
    let text = std::fs::read(path)
        .with_context(|| format!("cannot read records file {}", path.display()))?;
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    let last = lines.iter().rposition(|l| !l.trim_ascii().is_empty());
    let mut out = Vec::new();
    let mut note = None;
    let mut end = None;
    for (i, line) in lines.iter().enumerate() {
        if line.trim_ascii().is_empty() {
            continue;
        }
        if let Some(e) = end_line(line) {
            end = Some(e);
            continue;
        }
        match serde_json::from_slice::<Record>(line) {
            Ok(r) => out.push(r),
            Err(e) if Some(i) == last => {
                note = Some(format!(
                    "{}:{}: last line is incomplete ({e}); left out",
                    path.display(),
                    i + 1
                ));
            }
            Err(e) => {
                return Err(anyhow::anyhow!("{e}"))
                    .with_context(|| format!("{}:{}: not a record", path.display(), i + 1));
            }
        }
    }
    Ok(RecordsRead {
        records: out,
        note,
        end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::record::{Outcome, TokenSource};

    #[test]
    fn records_round_trip_through_jsonl() {
        let dir = std::env::temp_dir().join(format!("llmbench-rec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.jsonl");
        let rec = Record {
            scenario: "s".into(),
            outcome: Some(Outcome::Truncated),
            output_tokens_source: Some(TokenSource::Chunks),
            attempt: 1,
            ..Default::default()
        };
        let mut w = RecordWriter::create(&path).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            w.write(&rec).await.unwrap();
            w.write(&rec).await.unwrap();
        });
        w.finish().unwrap();
        let back = read_records(&path).unwrap();
        assert_eq!(back, vec![rec.clone(), rec]);
        std::fs::write(&path, "{\"bad\n").unwrap();
        let err = format!("{:#}", read_records(&path).unwrap_err());
        assert!(err.contains("r.jsonl:1"), "{err}");
    }
}
