//! The simulator's tokenizer and output text. Deterministic and simple, so the truth is known:
//! a token is an optional single leading space followed by up to four letters or digits, or
//! one other character. Every word the simulator generates is one token.

/// Words the simulator emits, each a single token (a space and at most four letters).
pub const WORDS: [&str; 32] = [
    " the", " of", " and", " to", " in", " is", " a", " for", " that", " on", " with", " as",
    " by", " at", " from", " this", " be", " or", " it", " an", " are", " was", " can", " will",
    " data", " code", " time", " each", " test", " fast", " slow", " load",
];

/// Byte ranges of the tokens of `text`.
pub fn pieces(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        if i >= bytes.len() {
            return None;
        }
        let start = i;
        let alnum = |b: u8| b.is_ascii_alphanumeric();
        if bytes[i] == b' ' && i + 1 < bytes.len() && alnum(bytes[i + 1]) {
            i += 1;
        }
        if alnum(bytes[i]) {
            let end = (i + 4).min(bytes.len());
            while i < end && alnum(bytes[i]) {
                i += 1;
            }
        } else {
            // One character, whole (UTF-8 sequences are not split).
            i += text[i..].chars().next().map_or(1, char::len_utf8);
        }
        Some(&text[start..i])
    })
}

/// Number of tokens in `text`.
pub fn count(text: &str) -> u64 {
    pieces(text).count() as u64
}

/// Chained hashes of every full block of `block` tokens: equal prefixes give equal hashes.
pub fn block_hashes(text: &str, block: usize) -> Vec<u64> {
    let mut out = Vec::new();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (n, piece) in pieces(text).enumerate() {
        for b in piece.bytes().chain([0xff]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        if (n + 1) % block == 0 {
            out.push(h);
        }
    }
    out
}

/// The `i`-th generated word of a response seeded with `seed`.
pub fn word(seed: u64, i: u64) -> &'static str {
    let mut x = seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    WORDS[(x % WORDS.len() as u64) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizes_words_in_pieces_of_four() {
        let p: Vec<&str> = pieces("Hello, world 12345!").collect();
        assert_eq!(p, vec!["Hell", "o", ",", " worl", "d", " 1234", "5", "!"]);
        assert_eq!(count(""), 0);
        assert_eq!(count("é é"), 3);
    }

    #[test]
    fn generated_words_are_one_token_each() {
        let text: String = (0..200).map(|i| word(42, i)).collect();
        assert_eq!(count(&text), 200);
    }

    #[test]
    fn block_hashes_share_prefixes() {
        let a = block_hashes(&"x y z w ".repeat(20), 16);
        let b = block_hashes(&("x y z w ".repeat(10) + &"q r ".repeat(20)), 16);
        assert_eq!(a.len(), 5);
        assert_eq!(a[..2], b[..2]);
        assert_ne!(a[3], b[3]);
    }
}
