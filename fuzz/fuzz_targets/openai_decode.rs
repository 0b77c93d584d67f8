//! The OpenAI event decoder: any payload decodes or returns an error, never panics; a whole SSE
//! body decodes the same when cut into pieces.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmbench::protocol::openai::OpenAi;
use llmbench::protocol::{Delta, Protocol};
use llmbench::transport::sse::{Event, Framer};

fn stream(p: &OpenAi, pieces: &[&[u8]]) -> Vec<Result<String, String>> {
    let mut f = Framer::new(p.framing(true));
    let mut out = Vec::new();
    let mut cb = |e: Event<'_>| -> Result<(), ()> {
        let mut d = Delta::default();
        out.push(match p.decode(e.data, &mut d) {
            Ok(()) => Ok(format!("{d:?}")),
            Err(e) => Err(e.0),
        });
        Ok(())
    };
    for piece in pieces {
        f.push(piece, &mut cb).unwrap();
    }
    f.finish(&mut cb).unwrap();
    out
}

fuzz_target!(|data: &[u8]| {
    for p in [OpenAi::chat(), OpenAi::completions()] {
        // As one payload (a whole non-streamed body or one event).
        let mut d = Delta::default();
        let _ = p.decode(data, &mut d);
        // As a stream, whole and cut in pieces of 7 bytes.
        let whole = stream(&p, &[data]);
        let pieces: Vec<&[u8]> = data.chunks(7).collect();
        assert_eq!(stream(&p, &pieces), whole);
    }
});
