//! `--image WIDTHxHEIGHT[:COUNT]` and `--image-format`: synthetic images made before any
//! request, attached to every scenario's requests.

use std::sync::Arc;

use anyhow::{Context, bail};

use crate::cli::RunArgs;
use crate::settings::RunSettings;
use crate::workload::image::{self, Encoding, ImageSize, WithImages};

/// Parses the image flags and wraps every scenario's workload; nothing when no `--image`.
pub(crate) fn apply_images(a: &RunArgs, plan: &mut RunSettings) -> anyhow::Result<()> {
    let w = &a.workload;
    let enc = match w.image_format.as_str() {
        "jpeg" | "jpg" => Encoding::Jpeg,
        "png" => Encoding::Png,
        f => bail!("--image-format {f:?} is not known; choose jpeg or png"),
    };
    if w.image.is_empty() {
        if w.image_format != "jpeg" {
            bail!("--image-format needs --image WIDTHxHEIGHT[:COUNT]");
        }
        return Ok(());
    }
    if w.conversations.is_some() {
        bail!("--image does not combine with --conversations (images go with single requests)");
    }
    let sizes = w
        .image
        .iter()
        .map(|s| ImageSize::parse(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let per_request: u32 = sizes.iter().map(|s| s.count).sum();
    if per_request > image::MAX_COUNT {
        bail!(
            "--image: {per_request} images per request; at most {} in all",
            image::MAX_COUNT
        );
    }
    let pixels: u64 = sizes
        .iter()
        .map(|s| {
            u64::from(s.width) * u64::from(s.height) * image::VARIANTS.max(s.count as usize) as u64
        })
        .sum();
    // Raw pixels while encoding; the encoded images are kept for the run.
    if pixels > 512 << 20 {
        bail!(
            "--image: the images to prepare hold {pixels} pixels; at most {} in all",
            512u64 << 20
        );
    }
    let sets = image::synthetic_sets(&sizes, enc, a.seed)
        .context("--image: cannot encode the synthetic images")?;
    let sets = Arc::new(sets);
    let label = format!(
        "{} {}",
        sizes
            .iter()
            .map(ImageSize::label)
            .collect::<Vec<_>>()
            .join(","),
        enc.name()
    );
    for sc in &mut plan.scenarios {
        sc.params.images = Some(match &sc.params.images {
            Some(d) => format!("{d} + {label}"),
            None => label.clone(),
        });
        sc.workload = Arc::new(WithImages {
            inner: sc.workload.clone(),
            sets: sets.clone(),
        });
    }
    Ok(())
}
