//! Byte-stream framing: Server-Sent Events and newline-delimited JSON. Pure, no I/O.
//!
//! Bytes arrive in arbitrary pieces (split anywhere, inside a line terminator or a UTF-8
//! sequence); the framer hands out complete event payloads in order. Payloads are bytes: the
//! protocol decoder decides what to do with invalid UTF-8.
//!
//! SSE rules followed (WHATWG): lines end in CRLF, LF or a bare CR; a line starting with `:`
//! is a comment; `data:` lines (one optional space after the colon removed) are joined with
//! `\n`; an empty line dispatches the event; other fields (`event:`, `id:`, `retry:`) are
//! kept aside (`event` is reported with the payload) and otherwise ignored. NDJSON: every
//! non-empty line is one payload.

pub use crate::protocol::Framing;

/// One complete event.
#[derive(Debug, PartialEq, Eq)]
pub struct Event<'a> {
    /// The SSE `event:` field, if any (empty for NDJSON and whole bodies).
    pub kind: &'a [u8],
    /// The payload: joined `data:` lines, an NDJSON line, or the whole body.
    pub data: &'a [u8],
}

/// Incremental framer.
#[derive(Debug)]
pub struct Framer {
    framing: Framing,
    /// Bytes of the line being assembled.
    line: Vec<u8>,
    /// Last byte seen was a CR: a following LF belongs to the same terminator.
    after_cr: bool,
    /// SSE: data of the event being assembled.
    data: Vec<u8>,
    /// SSE: whether any `data:` line was seen for the current event.
    has_data: bool,
    /// SSE: the current `event:` field.
    kind: Vec<u8>,
}

impl Framer {
    /// A framer for one response body.
    pub fn new(framing: Framing) -> Self {
        Self {
            framing,
            line: Vec::new(),
            after_cr: false,
            data: Vec::new(),
            has_data: false,
            kind: Vec::new(),
        }
    }

    /// Feeds the next piece of the body; calls `on_event` for each completed event.
    pub fn push<E>(
        &mut self,
        mut bytes: &[u8],
        on_event: &mut impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.framing == Framing::Whole {
            self.line.extend_from_slice(bytes);
            return Ok(());
        }
        if bytes.is_empty() {
            return Ok(());
        }
        if self.after_cr && bytes.first() == Some(&b'\n') {
            bytes = &bytes[1..];
        }
        self.after_cr = false;
        // A `data:` line wholly inside this piece, while no other data is pending, is kept as a
        // slice of the piece: when the blank line that dispatches it follows in the same piece
        // (the usual case: one event per write), its payload is handed out without a copy.
        let mut pending: Option<&[u8]> = None;
        while let Some(pos) = memchr::memchr2(b'\n', b'\r', bytes) {
            let (head, rest) = bytes.split_at(pos);
            let is_cr = rest[0] == b'\r';
            bytes = &rest[1..];
            if is_cr {
                if bytes.first() == Some(&b'\n') {
                    bytes = &bytes[1..];
                } else if bytes.is_empty() {
                    self.after_cr = true;
                }
            }
            if self.line.is_empty() {
                if self.framing == Framing::Sse {
                    if let Some(value) = pending.take() {
                        if head.is_empty() {
                            let r = on_event(Event {
                                kind: &self.kind,
                                data: value,
                            });
                            self.kind.clear();
                            r?;
                            continue;
                        }
                        self.data.extend_from_slice(value);
                        self.has_data = true;
                    } else if !self.has_data
                        && let Some(value) = head.strip_prefix(b"data:")
                    {
                        pending = Some(value.strip_prefix(b" ").unwrap_or(value));
                        continue;
                    }
                }
                self.line_done(head, on_event)?;
            } else {
                self.line.extend_from_slice(head);
                let line = std::mem::take(&mut self.line);
                let r = self.line_done(&line, on_event);
                self.line = line;
                self.line.clear();
                r?;
            }
        }
        if let Some(value) = pending {
            self.data.extend_from_slice(value);
            self.has_data = true;
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    /// The body ended: hands out what is complete. An SSE event whose lines all ended is
    /// dispatched even without the final empty line; a partial last line is dropped and
    /// reported as `false` (the body was cut inside a line).
    pub fn finish<E>(
        &mut self,
        on_event: &mut impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<bool, E> {
        match self.framing {
            Framing::Whole => {
                let body = std::mem::take(&mut self.line);
                if !body.is_empty() {
                    on_event(Event {
                        kind: b"",
                        data: &body,
                    })?;
                }
                Ok(true)
            }
            Framing::Ndjson => {
                let partial = std::mem::take(&mut self.line);
                if partial.iter().all(u8::is_ascii_whitespace) {
                    return Ok(true);
                }
                // A last JSON line without its newline is still a whole document if it parses
                // as one; the decoder decides, we hand it over.
                on_event(Event {
                    kind: b"",
                    data: &partial,
                })?;
                Ok(true)
            }
            Framing::Sse => {
                let clean = self.line.is_empty();
                if self.has_data {
                    self.dispatch(on_event)?;
                }
                Ok(clean)
            }
        }
    }

    fn line_done<E>(
        &mut self,
        line: &[u8],
        on_event: &mut impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        match self.framing {
            Framing::Ndjson => {
                if line.iter().all(u8::is_ascii_whitespace) {
                    return Ok(());
                }
                on_event(Event {
                    kind: b"",
                    data: line,
                })
            }
            Framing::Sse => {
                if line.is_empty() {
                    if self.has_data {
                        self.dispatch(on_event)?;
                    }
                    self.kind.clear();
                    return Ok(());
                }
                if line[0] == b':' {
                    return Ok(());
                }
                let (field, value) = match line.iter().position(|&b| b == b':') {
                    Some(i) => {
                        let v = &line[i + 1..];
                        (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
                    }
                    None => (line, &b""[..]),
                };
                match field {
                    b"data" => {
                        if self.has_data {
                            self.data.push(b'\n');
                        }
                        self.data.extend_from_slice(value);
                        self.has_data = true;
                    }
                    b"event" => {
                        self.kind.clear();
                        self.kind.extend_from_slice(value);
                    }
                    _ => {}
                }
                Ok(())
            }
            Framing::Whole => unreachable!("whole bodies are not split into lines"),
        }
    }

    fn dispatch<E>(
        &mut self,
        on_event: &mut impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let r = on_event(Event {
            kind: &self.kind,
            data: &self.data,
        });
        self.data.clear();
        self.has_data = false;
        self.kind.clear();
        r
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn frame(framing: Framing, pieces: &[&[u8]]) -> (Vec<(String, Vec<u8>)>, bool) {
        let mut f = Framer::new(framing);
        let mut out = Vec::new();
        let mut cb = |e: Event<'_>| -> Result<(), ()> {
            out.push((
                String::from_utf8_lossy(e.kind).into_owned(),
                e.data.to_vec(),
            ));
            Ok(())
        };
        for p in pieces {
            f.push(p, &mut cb).unwrap();
        }
        let clean = f.finish(&mut cb).unwrap();
        (out, clean)
    }

    fn every_split(framing: Framing, body: &[u8]) -> Vec<(String, Vec<u8>)> {
        let (whole, _) = frame(framing, &[body]);
        for i in 0..=body.len() {
            for j in i..=body.len() {
                let (got, _) = frame(framing, &[&body[..i], &body[i..j], &body[j..]]);
                assert_eq!(got, whole, "split at {i},{j}");
            }
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(frame(framing, &bytes).0, whole, "byte by byte");
        whole
    }

    #[test]
    fn sse_events_survive_every_split() {
        let body = "data: {\"a\":1}\r\n\r\n: ping\n\nevent: error\ndata: x\ndata:y\r\rid: 7\ndata: é€\n\ndata: [DONE]\n\n";
        let got = every_split(Framing::Sse, body.as_bytes());
        let want: Vec<(String, Vec<u8>)> = vec![
            ("".into(), b"{\"a\":1}".to_vec()),
            ("error".into(), b"x\ny".to_vec()),
            ("".into(), "é€".as_bytes().to_vec()),
            ("".into(), b"[DONE]".to_vec()),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn ndjson_lines_survive_every_split() {
        let body = b"{\"a\":1}\n\r\n{\"b\":2}\r\n{\"c\":3}";
        let got = every_split(Framing::Ndjson, body);
        let datas: Vec<&[u8]> = got.iter().map(|(_, d)| d.as_slice()).collect();
        assert_eq!(datas, vec![&b"{\"a\":1}"[..], b"{\"b\":2}", b"{\"c\":3}"]);
    }

    #[test]
    fn sse_reports_a_body_cut_inside_a_line() {
        let (got, clean) = frame(Framing::Sse, &[b"data: 1\n\ndata: {\"par"]);
        assert_eq!(got.len(), 1);
        assert!(!clean);
        let (got, clean) = frame(Framing::Sse, &[b"data: 1\n"]);
        assert_eq!(
            got.len(),
            1,
            "complete data line without blank line is kept"
        );
        assert!(clean);
    }

    #[test]
    fn whole_body_is_one_event() {
        let (got, _) = frame(Framing::Whole, &[b"{\"a\":", b"1}"]);
        assert_eq!(got, vec![("".into(), b"{\"a\":1}".to_vec())]);
    }

    #[test]
    fn large_lines_are_kept_whole() {
        let big = vec![b'x'; 1 << 20];
        let mut body = b"data: ".to_vec();
        body.extend_from_slice(&big);
        body.extend_from_slice(b"\n\n");
        let pieces: Vec<&[u8]> = body.chunks(8192).collect();
        let (got, _) = frame(Framing::Sse, &pieces);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.len(), 1 << 20);
    }

    #[test]
    fn sse_field_rules() {
        // `data` without a colon is an empty data line; `data:x` needs no space; only one
        // space is removed; unknown fields, `id:` and `retry:` are ignored; a comment-only body
        // dispatches nothing.
        let (got, clean) = frame(
            Framing::Sse,
            &[b"data\ndata:x\ndata:  two\nfoo: bar\nid: 1\nretry: 5\n\n: only a comment\n\n"],
        );
        assert!(clean);
        assert_eq!(got, vec![("".into(), b"\nx\n two".to_vec())]);
        let (got, _) = frame(Framing::Sse, &[b": ping\r\n\r\n:\n\n"]);
        assert!(got.is_empty());
        // An `event:` field without data dispatches nothing and does not leak into the next.
        let (got, _) = frame(Framing::Sse, &[b"event: error\n\ndata: 1\n\n"]);
        assert_eq!(got, vec![("".into(), b"1".to_vec())]);
    }

    #[test]
    fn invalid_utf8_passes_through_as_bytes() {
        let body = b"data: {\"a\":\"\xff\xfe\"}\n\ndata: \xe2\x82\n\n";
        let got = every_split(Framing::Sse, body);
        assert_eq!(got[0].1, b"{\"a\":\"\xff\xfe\"}".to_vec());
        assert_eq!(got[1].1, b"\xe2\x82".to_vec());
    }

    /// A small deterministic generator (SplitMix64), so the randomized tests are reproducible
    /// without a property-testing crate.
    pub(crate) struct Rng(pub u64);

    impl Rng {
        pub(crate) fn next(&mut self) -> u64 {
            let mut s = crate::rng::SplitMix(self.0);
            let v = s.next_u64();
            self.0 = s.0;
            v
        }
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        /// Cuts `body` into random pieces (empty ones included).
        pub(crate) fn pieces<'a>(&mut self, body: &'a [u8]) -> Vec<&'a [u8]> {
            let mut cuts: Vec<usize> = (0..self.below(8))
                .map(|_| self.below(body.len() + 1))
                .collect();
            cuts.sort_unstable();
            let mut out = Vec::new();
            let mut at = 0;
            for c in cuts {
                out.push(&body[at..c]);
                at = c;
            }
            out.push(&body[at..]);
            out
        }
    }

    #[test]
    fn random_bodies_frame_identically_under_random_splits() {
        let parts: [&[u8]; 14] = [
            b"data: {\"x\":1}",
            b"data:",
            b"data: \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
            b": ping",
            b"event: error",
            b"id: 42",
            b"retry: 10",
            b"",
            b"data: [DONE]",
            b"data: \xff",
            b"{\"ndjson\":true}",
            b"garbage line",
            b"data",
            b"   ",
        ];
        let ends: [&[u8]; 3] = [b"\n", b"\r\n", b"\r"];
        let mut rng = Rng(0x5eed);
        for _ in 0..3000 {
            let mut body = Vec::new();
            for _ in 0..rng.below(12) {
                body.extend_from_slice(parts[rng.below(parts.len())]);
                body.extend_from_slice(ends[rng.below(ends.len())]);
            }
            if rng.below(3) == 0 {
                body.extend_from_slice(parts[rng.below(parts.len())]);
            }
            for framing in [Framing::Sse, Framing::Ndjson] {
                let whole = frame(framing, &[&body]);
                for _ in 0..4 {
                    let pieces = rng.pieces(&body);
                    assert_eq!(
                        frame(framing, &pieces),
                        whole,
                        "{framing:?} {:?} in {pieces:?}",
                        String::from_utf8_lossy(&body)
                    );
                }
            }
        }
    }
}
