//! Images and audio in the simulator: its prefill rule for them, and reading their size.
//!
//! **Rule:** an image of W×H pixels is `ceil(W/28) × ceil(H/28)` prompt tokens (one token per
//! 28×28-pixel tile, as Qwen2-VL merges its 14-pixel patches 2×2; a 448×448 image is 256
//! tokens). They count in the reply's `prompt_tokens`. In the engine model they are prompt
//! tokens like any other (prefill cost per token, never prefix-cached); in fixed mode each one
//! adds `--prefill-ms-per-token` to the time to first token (text costs nothing there).
//! An audio clip (`input_audio`, WAV) is `ceil(25 · seconds)` tokens (one per 40 ms, as
//! Qwen2-Audio's encoder pools Whisper's frames), costed the same way.

use std::io::Cursor;

use base64::Engine as _;
use serde_json::Value;

/// Pixels per side of the tile one image token covers.
pub const TILE: u32 = 28;

/// Prompt tokens of a W×H image.
pub fn tokens(width: u32, height: u32) -> u64 {
    u64::from(width.div_ceil(TILE)) * u64::from(height.div_ceil(TILE))
}

/// Audio tokens per second.
pub const AUDIO_TOKENS_PER_S: f64 = 25.0;

/// Prompt tokens of a clip of `seconds`.
pub fn audio_tokens(seconds: f64) -> u64 {
    (seconds * AUDIO_TOKENS_PER_S - 1e-9).ceil().max(1.0) as u64
}

/// Seconds of a PCM WAV file: its `data` chunk over its byte rate.
pub fn wav_seconds(b: &[u8]) -> Option<f64> {
    if b.len() < 12 || &b[..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return None;
    }
    let (mut at, mut byte_rate) = (12usize, None);
    while at + 8 <= b.len() {
        let id = &b[at..at + 4];
        let len = u32::from_le_bytes(b[at + 4..at + 8].try_into().ok()?) as usize;
        let body = at + 8;
        if id == b"fmt " && body + 12 <= b.len() {
            byte_rate = Some(u32::from_le_bytes(b[body + 8..body + 12].try_into().ok()?));
        }
        if id == b"data" {
            let rate = f64::from(byte_rate.filter(|r| *r > 0)?);
            let len = len.min(b.len() - body);
            return Some(len as f64 / rate);
        }
        at = body + len + (len & 1);
    }
    None
}

/// Image and audio tokens of an OpenAI chat request: every `image_url` part of every message, each a
/// `data:` URL (the simulator fetches nothing).
pub fn openai_tokens(messages: &[Value]) -> Result<u64, String> {
    let mut n = 0;
    for m in messages {
        let Some(parts) = m.get("content").and_then(Value::as_array) else {
            continue;
        };
        for p in parts.iter().filter(|p| p["type"] == "input_audio") {
            let data = p["input_audio"]["data"]
                .as_str()
                .ok_or("an input_audio part needs base64 data")?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|e| format!("an audio clip is not valid base64 ({e})"))?;
            let secs = wav_seconds(&bytes).ok_or("the simulator reads audio as PCM WAV only")?;
            n += audio_tokens(secs);
        }
        for p in parts.iter().filter(|p| p["type"] == "image_url") {
            let url = p["image_url"]["url"]
                .as_str()
                .or(p["image_url"].as_str())
                .ok_or("an image_url part needs a url")?;
            let data = url
                .strip_prefix("data:")
                .and_then(|u| u.split_once(";base64,"))
                .map(|(_, d)| d)
                .ok_or("the simulator takes images as data: URLs (base64) only")?;
            n += base64_tokens(data)?;
        }
    }
    Ok(n)
}

/// Image tokens of Ollama's `images` (a list of base64 images) on `v`, if any.
pub fn ollama_tokens(v: &Value) -> Result<u64, String> {
    let Some(list) = v.get("images") else {
        return Ok(0);
    };
    let list = list.as_array().ok_or("`images` must be an array")?;
    let mut n = 0;
    for i in list {
        n += base64_tokens(i.as_str().ok_or("`images` must hold base64 strings")?)?;
    }
    Ok(n)
}

fn base64_tokens(data: &str) -> Result<u64, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| format!("an image is not valid base64 ({e})"))?;
    let (w, h) =
        dimensions(&bytes).ok_or("an image's size cannot be read (not JPEG, PNG, GIF or WebP)")?;
    Ok(tokens(w, h))
}

/// Width and height of an encoded image, read from its header.
pub fn dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let r = image::io::Reader::new(Cursor::new(bytes))
        .with_guessed_format()
        .ok()?;
    // GIF and WebP decoders are not built in: read their headers directly.
    match r.format() {
        Some(image::ImageFormat::Gif) if bytes.len() >= 10 => Some((
            u16::from_le_bytes([bytes[6], bytes[7]]).into(),
            u16::from_le_bytes([bytes[8], bytes[9]]).into(),
        )),
        Some(image::ImageFormat::WebP) => webp_size(bytes),
        _ => r.into_dimensions().ok(),
    }
}

fn webp_size(b: &[u8]) -> Option<(u32, u32)> {
    let le24 = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], 0]);
    match b.get(12..16)? {
        b"VP8X" if b.len() >= 30 => Some((le24(24) + 1, le24(27) + 1)),
        b"VP8 " if b.len() >= 30 => Some((
            u32::from(u16::from_le_bytes([b[26], b[27]]) & 0x3fff),
            u32::from(u16::from_le_bytes([b[28], b[29]]) & 0x3fff),
        )),
        b"VP8L" if b.len() >= 25 => {
            let bits = u32::from_le_bytes([b[21], b[22], b[23], b[24]]);
            Some(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_of_28_pixels_round_up() {
        assert_eq!(tokens(448, 448), 256);
        assert_eq!(tokens(100, 60), 12);
        assert_eq!(tokens(1, 1), 1);
        assert_eq!(tokens(1024, 768), 37 * 28);
    }

    #[test]
    fn audio_is_25_tokens_a_second() {
        assert_eq!(audio_tokens(1.0), 25);
        assert_eq!(audio_tokens(0.5), 13);
        assert_eq!(audio_tokens(2.5), 63);
        // Two seconds of 16 kHz mono 16-bit PCM: 64000 data bytes at 32000 bytes a second.
        let mut bytes = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        bytes.extend_from_slice(&16u32.to_le_bytes());
        bytes.extend_from_slice(&[1, 0, 1, 0]);
        bytes.extend_from_slice(&16_000u32.to_le_bytes());
        bytes.extend_from_slice(&32_000u32.to_le_bytes());
        bytes.extend_from_slice(&[2, 0, 16, 0]);
        bytes.extend_from_slice(b"data");
        bytes.extend_from_slice(&64_000u32.to_le_bytes());
        bytes.resize(bytes.len() + 64_000, 0);
        assert_eq!(wav_seconds(&bytes), Some(2.0));
        let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let m = serde_json::json!([{"role": "user", "content": [
            {"type": "text", "text": "hi"},
            {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}
        ]}]);
        assert_eq!(openai_tokens(m.as_array().unwrap()), Ok(50));
    }

    #[test]
    fn refuses_urls_it_cannot_read() {
        let m = |url: &str| {
            serde_json::json!([{"role": "user", "content": [
                {"type": "text", "text": "hi"},
                {"type": "image_url", "image_url": {"url": url}}
            ]}])
        };
        let e = openai_tokens(m("https://x/y.png").as_array().unwrap()).unwrap_err();
        assert!(e.contains("data: URLs"), "{e}");
        let e = openai_tokens(m("data:image/png;base64,!!!").as_array().unwrap()).unwrap_err();
        assert!(e.contains("base64"), "{e}");
        let e = openai_tokens(m("data:image/png;base64,aGVsbG8=").as_array().unwrap()).unwrap_err();
        assert!(e.contains("size cannot be read"), "{e}");
    }
}
