//! `--image`, `--audio` and dataset images: what goes on the wire, and bad input refused before any
//! request.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use base64::Engine as _;

use crate::common::*;

fn png(w: u32, h: u32) -> Vec<u8> {
    let img =
        llmbench::workload::media::synthetic(w, h, llmbench::workload::media::Encoding::Png, 3)
            .unwrap();
    base64::engine::general_purpose::STANDARD
        .decode(img.base64())
        .unwrap()
}

#[test]
fn images_go_after_the_text_of_the_last_user_message_as_data_urls() {
    let srv = ScriptServer::start(Arc::new(|_| openai_stream(1, 1, 2, 1)));
    let r = run(&[
        &srv.url,
        "--backend",
        "openai-chat",
        "-n",
        "10",
        "--prompt",
        "What is this?",
        "--image",
        "64x32:2",
    ]);
    assert!(r.output.status.success(), "{}", r.stderr());
    let bodies = srv.bodies.lock().unwrap().clone();
    let mut seen = std::collections::HashSet::new();
    for b in &bodies {
        let v: serde_json::Value = serde_json::from_str(b).unwrap();
        let parts = v["messages"][0]["content"].as_array().unwrap();
        assert_eq!(parts.len(), 3, "{b:.200}");
        assert_eq!(
            parts[0],
            serde_json::json!({"type": "text", "text": "What is this?"})
        );
        for p in &parts[1..] {
            let url = p["image_url"]["url"].as_str().unwrap();
            let data = url.strip_prefix("data:image/jpeg;base64,").unwrap();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap();
            assert_eq!(llmbench::sim::media::dimensions(&bytes), Some((64, 32)));
            seen.insert(url.to_string());
        }
        // Two distinct images in one request.
        assert_ne!(parts[1], parts[2]);
    }
    // Eight distinct images cycled over the requests.
    assert_eq!(seen.len(), llmbench::workload::media::VARIANTS);
}

#[test]
fn dataset_records_name_image_files_beside_the_dataset() {
    let srv = ScriptServer::start(Arc::new(|_| openai_stream(1, 1, 2, 1)));
    let dir = TempDir::new("ds-images");
    std::fs::create_dir(dir.path("img")).unwrap();
    std::fs::write(dir.path("img/a.png"), png(40, 30)).unwrap();
    std::fs::write(
        dir.path("ds.jsonl"),
        "{\"prompt\": \"one\", \"images\": [\"img/a.png\"]}\n{\"prompt\": \"two\"}\n",
    )
    .unwrap();
    let ds = dir.path("ds.jsonl").display().to_string();
    let r = run(&[&srv.url, "--backend", "openai-chat", "--dataset", &ds]);
    assert!(r.output.status.success(), "{}", r.stderr());
    assert_eq!(
        r.result().scenarios[0].params.images.as_deref(),
        Some("dataset")
    );
    let bodies = srv.bodies.lock().unwrap().clone();
    let with: Vec<_> = bodies.iter().filter(|b| b.contains("image_url")).collect();
    assert_eq!((bodies.len(), with.len()), (2, 1));
    assert!(with[0].contains("data:image/png;base64,"));

    // A missing or broken image file is named with the dataset's line; nothing is sent.
    std::fs::write(dir.path("img/bad.png"), "not an image").unwrap();
    for (line, name, says) in [
        (
            "{\"prompt\": \"x\", \"images\": [\"img/nope.png\"]}",
            "nope.png",
            "cannot read",
        ),
        (
            "{\"prompt\": \"x\", \"images\": [\"img/bad.png\"]}",
            "bad.png",
            "not an image",
        ),
        (
            "{\"prompt\": \"x\", \"images\": \"img/a.png\"}",
            "",
            "array of file paths",
        ),
    ] {
        std::fs::write(
            dir.path("bad.jsonl"),
            format!("{{\"prompt\": \"ok\"}}\n{line}\n"),
        )
        .unwrap();
        let bad = dir.path("bad.jsonl").display().to_string();
        let before = srv.requests.load(Ordering::SeqCst);
        let r = run(&[&srv.url, "--backend", "openai-chat", "--dataset", &bad]);
        assert_eq!(code(&r.output), 2, "{}", r.stderr());
        let e = r.stderr();
        assert!(
            e.contains(&format!("{bad}:2")) && e.contains(name) && e.contains(says),
            "{e}"
        );
        assert_eq!(srv.requests.load(Ordering::SeqCst), before);
    }
}

#[test]
fn bad_image_flags_and_backends_without_images_exit_2_before_any_request() {
    let srv = ScriptServer::start(Arc::new(|_| openai_stream(1, 1, 2, 1)));
    let u = srv.url.as_str();
    for (args, says) in [
        (vec![u, "--image", "0x5"], "--image \"0x5\""),
        (vec![u, "--image", "64"], "WIDTHxHEIGHT"),
        (vec![u, "--image", "64x64:99"], "COUNT"),
        (
            vec![u, "--image", "64x64", "--image-format", "gif"],
            "--image-format \"gif\"",
        ),
        (vec![u, "--image-format", "png"], "needs --image"),
        (
            vec![u, "--backend", "openai-completions", "--image", "8x8"],
            "the backend is openai-completions",
        ),
        (
            vec![u, "--backend", "tgi", "--image", "8x8"],
            "the backend is tgi",
        ),
    ] {
        let r = run(&args);
        assert_eq!(code(&r.output), 2, "{args:?}: {}", r.stderr());
        assert!(r.stderr().contains(says), "{args:?}: {}", r.stderr());
    }
    assert_eq!(srv.requests.load(Ordering::SeqCst), 0);
}

#[test]
fn audio_clips_go_as_input_audio_wav_parts_after_the_images() {
    let srv = ScriptServer::start(Arc::new(|_| openai_stream(1, 1, 2, 1)));
    let r = run(&[
        &srv.url,
        "--backend",
        "openai-chat",
        "-n",
        "3",
        "--prompt",
        "Listen.",
        "--image",
        "8x8",
        "--audio",
        "0.5:2",
    ]);
    assert!(r.output.status.success(), "{}", r.stderr());
    let p = &r.result().scenarios[0].params;
    assert_eq!(p.audio.as_deref(), Some("0.5s:2 wav"));
    assert_eq!(p.images.as_deref(), Some("8x8:1 jpeg"));
    for b in srv.bodies.lock().unwrap().iter() {
        let v: serde_json::Value = serde_json::from_str(b).unwrap();
        let parts = v["messages"][0]["content"].as_array().unwrap();
        let kinds: Vec<&str> = parts.iter().map(|p| p["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["text", "image_url", "input_audio", "input_audio"]);
        assert_eq!(parts[2]["input_audio"]["format"], "wav");
        let wav = base64::engine::general_purpose::STANDARD
            .decode(parts[2]["input_audio"]["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(llmbench::sim::media::wav_seconds(&wav), Some(0.5));
        assert_ne!(parts[2], parts[3]);
    }
}
