//! SSE and NDJSON framing: never panics, and cutting the body into pieces never changes the
//! events (the framer's core promise). The first byte picks the framing and the piece size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmbench::transport::sse::{Event, Framer, Framing};

type Events = Vec<(Vec<u8>, Vec<u8>)>;

fn frame(framing: Framing, pieces: &[&[u8]]) -> (Events, bool) {
    let mut f = Framer::new(framing);
    let mut out = Vec::new();
    let mut cb = |e: Event<'_>| -> Result<(), ()> {
        out.push((e.kind.to_vec(), e.data.to_vec()));
        Ok(())
    };
    for p in pieces {
        f.push(p, &mut cb).unwrap();
    }
    let clean = f.finish(&mut cb).unwrap();
    (out, clean)
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, body)) = data.split_first() else {
        return;
    };
    let framing = match ctl % 3 {
        0 => Framing::Sse,
        1 => Framing::Ndjson,
        _ => Framing::Whole,
    };
    let whole = frame(framing, &[body]);
    let step = (ctl as usize >> 2) + 1;
    let pieces: Vec<&[u8]> = body.chunks(step).collect();
    assert_eq!(frame(framing, &pieces), whole, "pieces of {step}");
    let bytes: Vec<&[u8]> = body.chunks(1).collect();
    assert_eq!(frame(framing, &bytes), whole, "byte by byte");
});
