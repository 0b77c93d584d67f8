//! `--image WIDTHxHEIGHT[:COUNT]`, `--image-format` and `--audio SECONDS[:COUNT]`: synthetic
//! images and audio clips made before any request, attached to every scenario's requests.

use std::sync::Arc;

use anyhow::{Context, bail};

use crate::cli::RunArgs;
use crate::settings::RunSettings;
use crate::workload::media::{self, AudioLength, Encoding, ImageSize, WithMedia};

/// Parses the media flags and wraps every scenario's workload; nothing without `--image` or
/// `--audio`.
pub(crate) fn apply_media(a: &RunArgs, plan: &mut RunSettings) -> anyhow::Result<()> {
    let w = &a.workload;
    let enc = match w.image_format.as_str() {
        "jpeg" | "jpg" => Encoding::Jpeg,
        "png" => Encoding::Png,
        f => bail!("--image-format {f:?} is not known; choose jpeg or png"),
    };
    if w.image.is_empty() && w.image_format != "jpeg" {
        bail!("--image-format needs --image WIDTHxHEIGHT[:COUNT]");
    }
    if w.image.is_empty() && w.audio.is_empty() {
        return Ok(());
    }
    if w.conversations.is_some() {
        bail!(
            "--image and --audio do not combine with --conversations (they go with single requests)"
        );
    }
    let images = images(&w.image, enc, a.seed)?;
    let lengths = w
        .audio
        .iter()
        .map(|s| AudioLength::parse(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let clips: u32 = lengths.iter().map(|l| l.count).sum();
    if clips > media::MAX_AUDIO_COUNT {
        bail!(
            "--audio: {clips} clips per request; at most {} in all",
            media::MAX_AUDIO_COUNT
        );
    }
    let audio = Arc::new(media::audio_sets(&lengths, a.seed));
    let audio_label = (!lengths.is_empty()).then(|| {
        let l: Vec<String> = lengths.iter().map(AudioLength::label).collect();
        format!("{} wav", l.join(","))
    });
    let (image_label, images) = match images {
        Some((l, s)) => (Some(l), s),
        None => (None, Vec::new()),
    };
    let images = Arc::new(images);
    for sc in &mut plan.scenarios {
        if let Some(label) = &image_label {
            sc.params.images = Some(match &sc.params.images {
                Some(d) => format!("{d} + {label}"),
                None => label.clone(),
            });
        }
        sc.params.audio = audio_label.clone();
        sc.workload = Arc::new(WithMedia {
            inner: sc.workload.clone(),
            images: images.clone(),
            audio: audio.clone(),
        });
    }
    Ok(())
}

type ImageSets = Vec<Vec<Arc<media::Image>>>;

/// The `--image` sets and their label, if any.
fn images(
    flags: &[String],
    enc: Encoding,
    seed: u64,
) -> anyhow::Result<Option<(String, ImageSets)>> {
    if flags.is_empty() {
        return Ok(None);
    }
    let sizes = flags
        .iter()
        .map(|s| ImageSize::parse(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let per_request: u32 = sizes.iter().map(|s| s.count).sum();
    if per_request > media::MAX_COUNT {
        bail!(
            "--image: {per_request} images per request; at most {} in all",
            media::MAX_COUNT
        );
    }
    let pixels: u64 = sizes
        .iter()
        .map(|s| {
            u64::from(s.width) * u64::from(s.height) * media::VARIANTS.max(s.count as usize) as u64
        })
        .sum();
    // Raw pixels while encoding; the encoded images are kept for the run.
    if pixels > 512 << 20 {
        bail!(
            "--image: the images to prepare hold {pixels} pixels; at most {} in all",
            512u64 << 20
        );
    }
    let sets = media::synthetic_sets(&sizes, enc, seed)
        .context("--image: cannot encode the synthetic images")?;
    let label = format!(
        "{} {}",
        sizes
            .iter()
            .map(ImageSize::label)
            .collect::<Vec<_>>()
            .join(","),
        enc.name()
    );
    Ok(Some((label, sets)))
}
