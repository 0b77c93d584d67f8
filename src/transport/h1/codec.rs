//! HTTP/1.1 on the wire for the direct client: the request head, the response head, and the
//! response body's framing (`Content-Length`, chunked, or until the connection closes).
//! Pure, no I/O: bytes in, decisions out.

/// How the response body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyLen {
    /// No body (`204`, `304`).
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the server closes the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) status: u16,
    /// Names lower-cased, values as sent (lossy UTF-8).
    pub(crate) headers: Vec<(String, String)>,
    /// Bytes of the buffer the head took.
    pub(crate) len: usize,
    pub(crate) body: BodyLen,
    /// The server will close the connection after this response (HTTP/1.0 without
    /// keep-alive, `Connection: close`, or a body that ends with the connection).
    pub(crate) close: bool,
}

/// Most bytes a response head may take.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// Parses a response head from the start of `buf`: `Ok(None)` while it is incomplete.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let mut slots = [httparse::EMPTY_HEADER; 96];
    let mut resp = httparse::Response::new(&mut slots);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Err(format!("response head longer than {MAX_HEAD} bytes"));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("invalid HTTP response head: {e}")),
    };
    let status = resp.code.unwrap_or(0);
    let http10 = resp.version == Some(0);
    let mut headers = Vec::with_capacity(resp.headers.len());
    let (mut length, mut chunked, mut conn_close, mut conn_keep) = (None, false, false, false);
    for h in resp.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        let value = String::from_utf8_lossy(h.value).trim().to_string();
        match name.as_str() {
            "content-length" => {
                let n: u64 = value
                    .parse()
                    .map_err(|_| format!("invalid Content-Length {value:?}"))?;
                if length.is_some_and(|l| l != n) {
                    return Err("conflicting Content-Length headers".into());
                }
                length = Some(n);
            }
            // The last coding decides: `gzip, chunked` is chunked (and then refused as
            // encoded by the caller's Content-Encoding check, or read as garbage).
            "transfer-encoding" => {
                chunked = value
                    .rsplit(',')
                    .next()
                    .is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"));
            }
            "connection" => {
                for t in value.split(',') {
                    conn_close |= t.trim().eq_ignore_ascii_case("close");
                    conn_keep |= t.trim().eq_ignore_ascii_case("keep-alive");
                }
            }
            _ => {}
        }
        headers.push((name, value));
    }
    let body = if status == 204 || status == 304 || (100..200).contains(&status) {
        BodyLen::Empty
    } else if chunked {
        BodyLen::Chunked
    } else if let Some(n) = length {
        BodyLen::Length(n)
    } else {
        BodyLen::UntilClose
    };
    let close = conn_close || (http10 && !conn_keep) || body == BodyLen::UntilClose;
    Ok(Some(Head {
        status,
        headers,
        len,
        body,
        close,
    }))
}

/// Writes a request head and body into `out`: `POST target HTTP/1.1`, `Host`, the headers,
/// `Content-Length`.
pub(crate) fn write_request<'a>(
    out: &mut Vec<u8>,
    target: &str,
    host: &str,
    headers: impl Iterator<Item = (&'a str, &'a [u8])>,
    body: &[u8],
) {
    out.clear();
    out.reserve(256 + body.len());
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\naccept: */*\r\n");
    for (k, v) in headers {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"content-length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

/// Where a chunked body's decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In a chunk-size line: the size so far, whether a digit was seen, and whether the
    /// digits have ended (an extension or whitespace follows).
    Size {
        value: u64,
        digits: bool,
        ext: bool,
    },
    /// In a chunk's data, this many bytes left.
    Data(u64),
    /// After a chunk's data: its CRLF (`true` once the CR was seen).
    DataEnd(bool),
    /// In the trailer section after the last chunk; `true` at the start of a line.
    Trailer(bool),
    Done,
}

/// The body's decoder: `Content-Length`, chunked or until close, fed one read at a time.
#[derive(Debug)]
pub(crate) struct Decoder {
    kind: BodyLen,
    /// Bytes left of a `Content-Length` body.
    left: u64,
    state: State,
    /// Bytes that came after the body's end (the connection cannot be reused).
    pub(crate) excess: bool,
}

impl Decoder {
    pub(crate) fn new(kind: BodyLen) -> Self {
        let (left, state) = match kind {
            BodyLen::Empty | BodyLen::Length(0) => (0, State::Done),
            BodyLen::Length(n) => (n, State::Data(n)),
            BodyLen::Chunked => (
                0,
                State::Size {
                    value: 0,
                    digits: false,
                    ext: false,
                },
            ),
            BodyLen::UntilClose => (0, State::Data(u64::MAX)),
        };
        Self {
            kind,
            left,
            state,
            excess: false,
        }
    }

    /// Whether the body has ended.
    pub(crate) fn done(&self) -> bool {
        self.state == State::Done
    }

    /// The connection closed: the end of an until-close body, or a body cut short.
    pub(crate) fn eof(&mut self) -> Result<(), String> {
        match (self.kind, self.state) {
            (_, State::Done) => Ok(()),
            (BodyLen::UntilClose, _) => {
                self.state = State::Done;
                Ok(())
            }
            (BodyLen::Length(n), _) => Err(format!(
                "connection closed {} bytes before the end of a {n}-byte body",
                self.left
            )),
            _ => Err("connection closed before the chunked body's last chunk".into()),
        }
    }

    /// Decodes one read in place: the body's bytes are moved to the front of `buf`, and their
    /// count is returned. Bytes after the body's end are dropped and noted in `excess`.
    pub(crate) fn decode(&mut self, buf: &mut [u8]) -> Result<usize, String> {
        if self.kind != BodyLen::Chunked {
            if self.state == State::Done {
                self.excess |= !buf.is_empty();
                return Ok(0);
            }
            if self.kind == BodyLen::UntilClose {
                return Ok(buf.len());
            }
            let n = (buf.len() as u64).min(self.left) as usize;
            self.left -= n as u64;
            if self.left == 0 {
                self.state = State::Done;
                self.excess |= n < buf.len();
            }
            return Ok(n);
        }
        let (mut i, mut o) = (0, 0);
        while i < buf.len() {
            match &mut self.state {
                State::Data(left) => {
                    let n = (buf.len() - i).min(*left as usize);
                    buf.copy_within(i..i + n, o);
                    i += n;
                    o += n;
                    *left -= n as u64;
                    if *left == 0 {
                        self.state = State::DataEnd(false);
                    }
                }
                State::Size { value, digits, ext } => {
                    let b = buf[i];
                    i += 1;
                    match b {
                        b'\n' => {
                            if !*digits {
                                return Err("chunk size line without a size".into());
                            }
                            self.state = if *value == 0 {
                                State::Trailer(true)
                            } else {
                                State::Data(*value)
                            };
                        }
                        b'\r' => *ext = true,
                        _ if *ext => {}
                        b';' | b' ' | b'\t' => *ext = true,
                        _ => {
                            let d = (b as char).to_digit(16).ok_or_else(|| {
                                format!("invalid byte {b:#04x} in a chunk size line")
                            })?;
                            if *value >> 56 != 0 {
                                return Err("chunk size too large".into());
                            }
                            *value = *value << 4 | u64::from(d);
                            *digits = true;
                        }
                    }
                }
                State::DataEnd(cr) => {
                    let b = buf[i];
                    i += 1;
                    match b {
                        b'\r' if !*cr => *cr = true,
                        b'\n' => {
                            self.state = State::Size {
                                value: 0,
                                digits: false,
                                ext: false,
                            }
                        }
                        _ => return Err("chunk data not followed by CRLF".into()),
                    }
                }
                State::Trailer(line_start) => {
                    let b = buf[i];
                    i += 1;
                    match b {
                        b'\n' if *line_start => self.state = State::Done,
                        b'\n' => *line_start = true,
                        b'\r' => {}
                        _ => *line_start = false,
                    }
                }
                State::Done => {
                    self.excess = true;
                    break;
                }
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(s: &str) -> Head {
        parse_head(s.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn heads_say_how_the_body_ends_and_whether_the_connection_stays() {
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\nrest");
        assert_eq!((h.status, h.body, h.close), (200, BodyLen::Chunked, false));
        assert_eq!(
            h.len,
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n".len()
        );
        assert!(h.headers.contains(&("x-a".into(), "b".into())));
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\n");
        assert_eq!((h.body, h.close), (BodyLen::Length(12), true));
        let h = head("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n");
        assert!(h.close, "HTTP/1.0 closes unless it says keep-alive");
        let h = head("HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n");
        assert!(!h.close);
        let h = head("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!((h.body, h.close), (BodyLen::UntilClose, true));
        let h = head("HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!((h.body, h.close), (BodyLen::Empty, false));
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Le")
                .unwrap()
                .is_none()
        );
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        let long = format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(MAX_HEAD));
        assert!(parse_head(long.as_bytes()).unwrap_err().contains("longer"));
    }

    #[test]
    fn the_request_carries_host_headers_and_length() {
        let mut out = Vec::new();
        let hs = [("authorization", b"Bearer k".as_slice())];
        write_request(&mut out, "/v1/x?a=1", "h:8", hs.into_iter(), b"{}");
        assert_eq!(
            out,
            b"POST /v1/x?a=1 HTTP/1.1\r\nhost: h:8\r\naccept: */*\r\nauthorization: Bearer k\r\ncontent-length: 2\r\n\r\n{}"
        );
    }

    /// Feeds `wire` split at every pair of points and checks the body and the end.
    fn decodes_anywhere(kind: BodyLen, wire: &[u8], body: &[u8]) {
        for a in 0..=wire.len() {
            for b in a..=wire.len() {
                let mut d = Decoder::new(kind);
                let mut got = Vec::new();
                for piece in [&wire[..a], &wire[a..b], &wire[b..]] {
                    let mut p = piece.to_vec();
                    let n = d.decode(&mut p).unwrap();
                    got.extend_from_slice(&p[..n]);
                }
                assert_eq!(got, body, "split at {a},{b}");
                assert!(d.done(), "split at {a},{b}");
                assert!(!d.excess);
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_however_the_reads_split_them() {
        let wire = b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n";
        decodes_anywhere(BodyLen::Chunked, wire, b"hello 0123456789");
        decodes_anywhere(BodyLen::Chunked, b"3\nabc\n0\n\n", b"abc");
        decodes_anywhere(BodyLen::Length(4), b"abcd", b"abcd");
    }

    #[test]
    fn bad_chunks_and_cut_bodies_are_errors_and_excess_is_noted() {
        let mut d = Decoder::new(BodyLen::Chunked);
        assert!(d.decode(&mut b"zz\r\n".to_vec()).is_err());
        let mut d = Decoder::new(BodyLen::Chunked);
        assert!(d.decode(&mut b"2\r\nabX".to_vec()).is_err());
        let mut d = Decoder::new(BodyLen::Chunked);
        assert!(d.decode(&mut b"\r\n".to_vec()).is_err());
        let mut d = Decoder::new(BodyLen::Chunked);
        assert!(d.decode(&mut b"fffffffffffffffff\r\n".to_vec()).is_err());
        let mut d = Decoder::new(BodyLen::Chunked);
        d.decode(&mut b"2\r\nab".to_vec()).unwrap();
        assert!(d.eof().unwrap_err().contains("last chunk"));
        let mut d = Decoder::new(BodyLen::Length(5));
        assert_eq!(d.decode(&mut b"abc".to_vec()).unwrap(), 3);
        assert!(d.eof().unwrap_err().contains("2 bytes before"));
        let mut d = Decoder::new(BodyLen::Length(2));
        assert_eq!(d.decode(&mut b"abc".to_vec()).unwrap(), 2);
        assert!(d.done() && d.excess);
        let mut d = Decoder::new(BodyLen::Chunked);
        d.decode(&mut b"0\r\n\r\nHTTP".to_vec()).unwrap();
        assert!(d.done() && d.excess);
        let mut d = Decoder::new(BodyLen::UntilClose);
        assert_eq!(d.decode(&mut b"abc".to_vec()).unwrap(), 3);
        assert!(!d.done());
        d.eof().unwrap();
        assert!(d.done());
    }
}
