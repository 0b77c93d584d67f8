//! Images and audio sent with chat requests (`--image WIDTHxHEIGHT[:COUNT]`, dataset
//! `"images"`, `--audio SECONDS[:COUNT]`).
//!
//! Synthetic images are seeded random pixels (as vLLM's `random-mm` dataset makes them),
//! encoded once before the run as JPEG or PNG and carried as `data:` URLs, so encoding never
//! costs time while requests are timed. Each size gets [`VARIANTS`] distinct images (at least
//! its count), cycled over the requests; the text of each prompt comes before its images, so a
//! server's prefix cache never reaches the image tokens of a request whose text is new.

use std::sync::Arc;

use anyhow::{Context, bail};
use base64::Engine as _;

use super::{RequestSpec, Workload};
use crate::sim::media::dimensions;

/// Distinct images made for each `--image` size (more when one request takes more).
pub const VARIANTS: usize = 8;
/// Largest side of a synthetic image (pixels).
pub const MAX_SIDE: u32 = 8192;
/// Most images of one size per request.
pub const MAX_COUNT: u32 = 16;

/// One image as sent: a `data:` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `data:<mime>;base64,<data>`.
    pub url: Arc<str>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Image {
    /// The base64 payload alone (Ollama's `images` take it without the URL prefix).
    pub fn base64(&self) -> &str {
        self.url.split_once(',').map_or("", |(_, d)| d)
    }

    /// An image from its encoded bytes (JPEG, PNG, GIF or WebP, told by its first bytes).
    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<Self> {
        let format = image::guess_format(bytes)
            .ok()
            .context("not an image llmbench knows (JPEG, PNG, GIF or WebP)")?;
        let mime = match format {
            image::ImageFormat::Jpeg => "image/jpeg",
            image::ImageFormat::Png => "image/png",
            image::ImageFormat::Gif => "image/gif",
            image::ImageFormat::WebP => "image/webp",
            _ => bail!("not an image llmbench knows (JPEG, PNG, GIF or WebP)"),
        };
        let (width, height) = dimensions(bytes)
            .context("its size cannot be read (a damaged or unsupported image)")?;
        let data = base64::engine::general_purpose::STANDARD.encode(bytes);
        Ok(Self {
            url: format!("data:{mime};base64,{data}").into(),
            width,
            height,
        })
    }
}

/// How synthetic images are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// JPEG at quality 85.
    Jpeg,
    /// PNG.
    Png,
}

impl Encoding {
    /// Its `--image-format` name.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Jpeg => "jpeg",
            Encoding::Png => "png",
        }
    }
}

/// One `--image WIDTHxHEIGHT[:COUNT]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageSize {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Images of this size per request.
    pub count: u32,
}

impl ImageSize {
    /// Parses `WIDTHxHEIGHT[:COUNT]`.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let shape = || format!("--image {s:?}: expected WIDTHxHEIGHT[:COUNT], e.g. 1024x768:2");
        let (size, count) = match s.split_once(':') {
            Some((size, c)) => (size, c.trim().parse::<u32>().ok().with_context(shape)?),
            None => (s, 1),
        };
        let (w, h) = size.split_once(['x', 'X']).with_context(shape)?;
        let side = |v: &str| v.trim().parse::<u32>().ok();
        let (Some(width), Some(height)) = (side(w), side(h)) else {
            bail!(shape());
        };
        if !(1..=MAX_SIDE).contains(&width) || !(1..=MAX_SIDE).contains(&height) {
            bail!("--image {s:?}: each side must be from 1 to {MAX_SIDE} pixels");
        }
        if !(1..=MAX_COUNT).contains(&count) {
            bail!("--image {s:?}: COUNT must be from 1 to {MAX_COUNT}");
        }
        Ok(Self {
            width,
            height,
            count,
        })
    }

    /// As the flag spells it.
    pub fn label(&self) -> String {
        format!("{}x{}:{}", self.width, self.height, self.count)
    }
}

/// A synthetic image: seeded random pixels, encoded.
pub fn synthetic(width: u32, height: u32, enc: Encoding, seed: u64) -> anyhow::Result<Image> {
    let mut state = seed;
    let mut px = vec![0u8; width as usize * height as usize * 3];
    for chunk in px.chunks_mut(8) {
        state = crate::rng::splitmix64(state);
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    let mut out = Vec::new();
    match enc {
        Encoding::Jpeg => image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85).encode(
            &px,
            width,
            height,
            image::ColorType::Rgb8,
        )?,
        Encoding::Png => {
            use image::ImageEncoder as _;
            image::codecs::png::PngEncoder::new(&mut out).write_image(
                &px,
                width,
                height,
                image::ColorType::Rgb8,
            )?
        }
    }
    Image::from_bytes(&out)
}

/// The images of every request: request `i` takes set `i` modulo their number.
pub fn synthetic_sets(
    sizes: &[ImageSize],
    enc: Encoding,
    seed: u64,
) -> anyhow::Result<Vec<Vec<Arc<Image>>>> {
    let mut per_size = Vec::new();
    for (k, s) in sizes.iter().enumerate() {
        let n = VARIANTS.max(s.count as usize);
        let imgs = (0..n)
            .map(|v| {
                let seed = seed ^ crate::rng::splitmix64(((k as u64) << 32) | v as u64);
                synthetic(s.width, s.height, enc, seed).map(Arc::new)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        per_size.push(imgs);
    }
    let counts: Vec<usize> = sizes.iter().map(|s| s.count as usize).collect();
    Ok(cycle(&per_size, &counts))
}

/// Sets that use every variant of every kind: set `i` takes `counts[k]` consecutive variants
/// of kind `k` from `i · counts[k]` on (so none repeats within a set).
fn cycle<T>(per_kind: &[Vec<Arc<T>>], counts: &[usize]) -> Vec<Vec<Arc<T>>> {
    let sets = per_kind
        .iter()
        .zip(counts)
        .map(|(v, c)| v.len().div_ceil(*c))
        .max()
        .unwrap_or(1);
    (0..sets)
        .map(|i| {
            per_kind
                .iter()
                .zip(counts)
                .flat_map(|(v, &c)| (0..c).map(move |j| v[(i * c + j) % v.len()].clone()))
                .collect()
        })
        .collect()
}

/// One audio clip as sent: a base64 WAV file (OpenAI's `input_audio`).
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// The WAV file, base64.
    pub data: Arc<str>,
    /// Its length in seconds.
    pub seconds: f64,
}

/// Sample rate of synthetic audio (Hz; mono, 16-bit).
pub const AUDIO_RATE: u32 = 16_000;
/// Longest synthetic clip (seconds).
pub const MAX_AUDIO_SECONDS: f64 = 120.0;
/// Most clips of one length per request.
pub const MAX_AUDIO_COUNT: u32 = 4;

/// One `--audio SECONDS[:COUNT]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioLength {
    /// Seconds of each clip.
    pub seconds: f64,
    /// Clips of this length per request.
    pub count: u32,
}

impl AudioLength {
    /// Parses `SECONDS[:COUNT]`.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let shape = || format!("--audio {s:?}: expected SECONDS[:COUNT], e.g. 5 or 2.5:2");
        let (secs, count) = match s.split_once(':') {
            Some((a, c)) => (a, c.trim().parse::<u32>().ok().with_context(shape)?),
            None => (s, 1),
        };
        let seconds: f64 = secs.trim().parse().ok().with_context(shape)?;
        if !(seconds > 0.0 && seconds <= MAX_AUDIO_SECONDS) {
            bail!("--audio {s:?}: SECONDS must be above 0 and at most {MAX_AUDIO_SECONDS}");
        }
        if !(1..=MAX_AUDIO_COUNT).contains(&count) {
            bail!("--audio {s:?}: COUNT must be from 1 to {MAX_AUDIO_COUNT}");
        }
        Ok(Self { seconds, count })
    }

    /// As the flag spells it.
    pub fn label(&self) -> String {
        format!("{}s:{}", self.seconds, self.count)
    }
}

/// A synthetic clip: seeded quiet noise, 16 kHz mono 16-bit PCM in a WAV file.
pub fn synthetic_audio(seconds: f64, seed: u64) -> Audio {
    let samples = (seconds * f64::from(AUDIO_RATE)).round().max(1.0) as u32;
    let data_len = samples * 2;
    let mut w = Vec::with_capacity(44 + data_len as usize);
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data_len).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&AUDIO_RATE.to_le_bytes());
    w.extend_from_slice(&(AUDIO_RATE * 2).to_le_bytes()); // bytes per second
    w.extend_from_slice(&2u16.to_le_bytes()); // block align
    w.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    w.extend_from_slice(b"data");
    w.extend_from_slice(&data_len.to_le_bytes());
    let mut state = seed;
    for _ in 0..samples {
        state = crate::rng::splitmix64(state);
        // Quiet noise: within ±1024 of silence.
        let v = (state % 2048) as i16 - 1024;
        w.extend_from_slice(&v.to_le_bytes());
    }
    Audio {
        data: base64::engine::general_purpose::STANDARD.encode(&w).into(),
        seconds: f64::from(samples) / f64::from(AUDIO_RATE),
    }
}

/// The clips of every request, cycled like images.
pub fn audio_sets(lengths: &[AudioLength], seed: u64) -> Vec<Vec<Arc<Audio>>> {
    let per_len: Vec<Vec<Arc<Audio>>> = lengths
        .iter()
        .enumerate()
        .map(|(k, l)| {
            (0..VARIANTS.max(l.count as usize))
                .map(|v| {
                    let seed =
                        seed ^ crate::rng::splitmix64(((k as u64) << 40) | v as u64 | 1 << 63);
                    Arc::new(synthetic_audio(l.seconds, seed))
                })
                .collect()
        })
        .collect();
    let counts: Vec<usize> = lengths.iter().map(|l| l.count as usize).collect();
    cycle(&per_len, &counts)
}

/// A workload whose requests carry images and audio besides what they already have.
pub struct WithMedia {
    /// The requests.
    pub inner: Arc<dyn Workload>,
    /// Request `i` takes `images[i % images.len()]` (none when empty).
    pub images: Arc<Vec<Vec<Arc<Image>>>>,
    /// Request `i` takes `audio[i % audio.len()]` (none when empty).
    pub audio: Arc<Vec<Vec<Arc<Audio>>>>,
}

impl WithMedia {
    fn add(&self, mut spec: RequestSpec, index: u64) -> RequestSpec {
        if !self.images.is_empty() {
            let set = &self.images[(index % self.images.len() as u64) as usize];
            spec.images.extend(set.iter().cloned());
        }
        if !self.audio.is_empty() {
            let set = &self.audio[(index % self.audio.len() as u64) as usize];
            spec.audio.extend(set.iter().cloned());
        }
        spec
    }
}

impl Workload for WithMedia {
    fn get(&self, index: u64) -> RequestSpec {
        self.add(self.inner.get(index), index)
    }
    fn len(&self) -> Option<u64> {
        self.inner.len()
    }
    fn get_warmup(&self, index: u64) -> RequestSpec {
        self.add(self.inner.get_warmup(index), index)
    }
    fn context_needed(&self) -> Option<u64> {
        self.inner.context_needed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_and_refuses_bad_ones() {
        let s = ImageSize::parse("1024x768:2").unwrap();
        assert_eq!((s.width, s.height, s.count), (1024, 768, 2));
        assert_eq!(ImageSize::parse("64X64").unwrap().count, 1);
        for bad in [
            "", "64", "0x5", "5x0", "64x64:0", "64x64:17", "9000x10", "ax4", "4x4:x",
        ] {
            let e = ImageSize::parse(bad).unwrap_err().to_string();
            assert!(e.contains("--image"), "{bad}: {e}");
        }
    }

    #[test]
    fn synthetic_images_have_their_size_and_differ() {
        for enc in [Encoding::Jpeg, Encoding::Png] {
            let a = synthetic(64, 48, enc, 1).unwrap();
            let b = synthetic(64, 48, enc, 2).unwrap();
            assert_eq!((a.width, a.height), (64, 48));
            assert!(
                a.url
                    .starts_with(&format!("data:image/{};base64,", enc.name()))
            );
            assert_ne!(a.url, b.url);
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(a.base64())
                .unwrap();
            assert_eq!(dimensions(&bytes), Some((64, 48)));
        }
    }

    #[test]
    fn synthetic_audio_is_a_wav_of_its_length() {
        let a = synthetic_audio(1.5, 9);
        assert_eq!(a.seconds, 1.5);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&*a.data)
            .unwrap();
        assert_eq!(&bytes[..4], b"RIFF");
        assert_eq!(bytes.len(), 44 + 24_000 * 2);
        assert_ne!(synthetic_audio(1.5, 10).data, a.data);
        assert_eq!(AudioLength::parse("2.5:2").unwrap().count, 2);
        for bad in ["0", "-1", "121", "x", "5:0", "5:5"] {
            assert!(AudioLength::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sets_cycle_every_variant_with_count_per_request() {
        let sizes = [
            ImageSize::parse("8x8:3").unwrap(),
            ImageSize::parse("4x4").unwrap(),
        ];
        let sets = synthetic_sets(&sizes, Encoding::Png, 7).unwrap();
        // 8 variants of 8x8, three a request: 3 sets cover them all.
        assert_eq!(sets.len(), 8);
        assert!(sets.iter().all(|s| s.len() == 4));
        let distinct: std::collections::HashSet<_> = sets
            .iter()
            .flat_map(|s| s[..3].iter().map(|i| i.url.clone()))
            .collect();
        assert_eq!(distinct.len(), 8);
        // No request repeats an image.
        for s in &sets {
            let d: std::collections::HashSet<_> = s.iter().map(|i| i.url.clone()).collect();
            assert_eq!(d.len(), s.len());
        }
    }
}
