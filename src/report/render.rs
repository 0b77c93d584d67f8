//! Drawing chart specs with plotters: PNG files and SVG text. Nothing here decides what a
//! chart shows (that is `super::charts`).
//!
//! Text uses DejaVu Sans compiled into the binary (`assets/fonts`, Bitstream Vera licence), so
//! charts render the same on a machine without fontconfig or system fonts.

use std::path::Path;
use std::sync::Once;

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::chart::{Chart, Panel, Rule};
use super::legend;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Colours (matplotlib's tab10).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

type R = anyhow::Result<()>;

/// How a line panel places x.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum XMode {
    /// Swept values, evenly spaced and labelled with their value.
    Categories,
    /// Latency against the cumulative share of requests (y 0–100 %).
    Cdf,
    /// Seconds.
    Time,
    /// A numeric x with a marker on every point (capacity steps).
    Numeric,
}

/// Reference lines: dark red, then black, then grey.
const RULE_COLOURS: [RGBColor; 3] = [
    RGBColor(170, 0, 0),
    RGBColor(0, 0, 0),
    RGBColor(110, 110, 110),
];

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing a chart failed: {e:?}")
}

fn upper(max: f64) -> f64 {
    if max > 0.0 { max * 1.12 } else { 1.0 }
}

/// A label cut to fit among `n` others side by side (`n` = 0: standing upright, 24 characters).
fn short(label: &str, n: usize) -> String {
    let limit = match n {
        0 => 24,
        1..=4 => 28,
        5..=8 => 16,
        _ => 10,
    };
    if label.chars().count() > limit {
        let s: String = label.chars().take(limit - 1).collect();
        format!("{s}…")
    } else {
        label.to_string()
    }
}

fn draw_bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
) -> R {
    let n = categories.len().max(1);
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0, f64::max);
    // Many scenarios: their names stand upright under the bars, long enough to tell apart.
    let upright = n > 6;
    let names: Vec<&str> = series.iter().map(|(n, _)| n.as_str()).collect();
    let (plot, key) = legend::split(area, &names);
    let area = &plot;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", CAPTION))
        .margin(12)
        .x_label_area_size(if upright { 190 } else { 45 })
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..upper(max))
        .map_err(err)?;
    let cats = categories.to_vec();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n + 1)
        .x_label_formatter(&|v| {
            let i = v.round();
            if !upright && (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < cats.len() {
                short(&cats[i as usize], cats.len())
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v| tick(*v))
        .y_desc(y_label)
        .x_desc("scenario")
        .label_style(("sans-serif", LABEL))
        .axis_desc_style(("sans-serif", DESC))
        .draw()
        .map_err(err)?;
    if upright {
        // Drawn here rather than by the mesh, which centres rotated labels on the axis.
        let style = ("sans-serif", LABEL)
            .into_font()
            .transform(FontTransform::Rotate90)
            .into_text_style(area)
            .pos(Pos::new(HPos::Left, VPos::Center));
        let base = area.get_base_pixel();
        for (i, c) in categories.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(i as f64, 0.0));
            area.draw(&Text::new(
                short(c, 0),
                (x - base.0, y - base.1 + 8),
                style.clone(),
            ))
            .map_err(err)?;
        }
    }
    let k = series.len().max(1) as f64;
    let width = 0.8 / k;
    for (si, (_, values)) in series.iter().enumerate() {
        let c = color(si);
        chart
            .draw_series(values.iter().enumerate().map(|(i, v)| {
                let x0 = i as f64 - 0.4 + si as f64 * width;
                Rectangle::new([(x0 + 0.01, 0.0), (x0 + width - 0.01, *v)], c.filled())
            }))
            .map_err(err)?;
    }
    if let Some(k) = key {
        let entries: Vec<_> = series
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.clone(), color(i), legend::Key::Bar))
            .collect();
        legend::draw(&k, &entries).map_err(err)?;
    }
    Ok(())
}

/// Tick label: no decimals from 10 up, else at most two, trailing zeros dropped.
fn tick(v: f64) -> String {
    if v.abs() >= 10.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Tick label on an axis `span` wide: as `tick`, with the decimals a narrow span needs to
/// tell its ticks apart (38.5 and 39 on an axis from 37.6 to 40, not 38 and 39 twice).
fn tick_on(v: f64, span: f64) -> String {
    if !(span > 0.0 && span < 10.0) {
        return tick(v);
    }
    // One decimal more than the tick step's first digit needs (steps of 0.25 exist); trailing
    // zeros are dropped.
    let digits = (1.0 - (span / 10.0).log10().floor()).clamp(0.0, 5.0) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Font sizes (px): tick labels and legends, axis descriptions, panel captions.
const LABEL: u32 = 15;
const DESC: u32 = 16;
const CAPTION: u32 = 21;

fn bounds(series: &[(String, Vec<(f64, f64)>)]) -> (f64, f64, f64, f64) {
    let pts = series.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
    for (x, y) in pts {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y1 = y1.max(*y);
    }
    if !x0.is_finite() {
        return (0.0, 1.0, 0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    (x0, x1, 0.0, y1)
}

#[allow(clippy::too_many_arguments)]
fn draw_lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    mode: XMode,
    y_cap: Option<f64>,
    rules: &[Rule],
) -> R {
    let names: Vec<&str> = series
        .iter()
        .map(|(n, _)| n.as_str())
        .chain(rules.iter().map(|r| r.name.as_str()))
        .collect();
    let (plot, key) = legend::split(area, &names);
    let area = &plot;
    let cdf = mode == XMode::Cdf;
    let numeric = mode != XMode::Categories;
    // Experiments: the swept values sit evenly spaced and labelled with their value (a
    // doubling concurrency series reads like a log axis); CDFs keep a numeric x.
    let mut values: Vec<f64> = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(x, _)| *x))
        .collect();
    values.sort_by(f64::total_cmp);
    values.dedup();
    let place = |x: f64| -> f64 {
        if numeric {
            x
        } else {
            values.iter().position(|v| *v == x).unwrap_or(0) as f64
        }
    };
    let series: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(n, p)| (n.clone(), p.iter().map(|(x, y)| (place(*x), *y)).collect()))
        .collect();
    let series = &series;
    let (mut x0, mut x1, _, mut y1) = bounds(series);
    // Reference lines stay inside the axes.
    for r in rules {
        if r.vertical {
            x0 = x0.min(r.at);
            x1 = x1.max(r.at);
        } else {
            y1 = y1.max(r.at);
        }
    }
    let (xa, xb) = if numeric {
        let pad = (x1 - x0).max(1e-3) * 0.04;
        ((x0 - pad).max(0.0), x1 + pad)
    } else {
        (-0.3, values.len().max(1) as f64 - 0.7)
    };
    // CPU axes end at 100 % per core unless a value goes beyond.
    let ytop = match y_cap {
        _ if cdf => 100.0,
        Some(cap) if y1 <= cap => cap,
        _ => upper(y1),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", CAPTION))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(75)
        .build_cartesian_2d(xa..xb, 0f64..ytop)
        .map_err(err)?;
    let labels = values.clone();
    let x_fmt = move |v: &f64| -> String {
        if numeric {
            return tick_on(*v, xb - xa);
        }
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
            let x = labels[i as usize];
            if x.fract() == 0.0 {
                format!("{x:.0}")
            } else {
                tick(x)
            }
        } else {
            String::new()
        }
    };
    let mut mesh = chart.configure_mesh();
    if !numeric {
        mesh.x_labels(values.len() + 1).disable_x_mesh();
    }
    mesh.x_label_formatter(&x_fmt)
        .y_label_formatter(&|v| tick(*v))
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(("sans-serif", LABEL))
        .axis_desc_style(("sans-serif", DESC))
        .draw()
        .map_err(err)?;
    for (i, (_, pts)) in series.iter().enumerate() {
        if pts.is_empty() {
            continue;
        }
        let c = color(i);
        // Timelines are dense (a point per sample, several per pixel): plotters' bitmap backend
        // draws a thick line's zero-length segments as spikes, so they get 1-pixel lines.
        let width = if mode == XMode::Time { 1 } else { 2 };
        let style = ShapeStyle::from(&c).stroke_width(width);
        if legend::dashed(i) {
            chart
                .draw_series(DashedLineSeries::new(pts.iter().copied(), 10, 6, style))
                .map_err(err)?;
        } else {
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), style))
                .map_err(err)?;
        }
        if !numeric || pts.len() <= 12 || mode == XMode::Numeric {
            let base = area.get_base_pixel();
            for p in pts {
                let (x, y) = chart.backend_coord(p);
                legend::draw_marker(area, (x - base.0, y - base.1), i, c).map_err(err)?;
            }
        }
    }
    for (k, r) in rules.iter().enumerate() {
        let c = RULE_COLOURS[k % RULE_COLOURS.len()];
        let pts = if r.vertical {
            vec![(r.at, 0.0), (r.at, ytop)]
        } else {
            vec![(xa, r.at), (xb, r.at)]
        };
        chart
            .draw_series(DashedLineSeries::new(
                pts,
                9,
                6,
                ShapeStyle::from(&c).stroke_width(2),
            ))
            .map_err(err)?;
    }
    if let Some(k) = key {
        let entries: Vec<_> = series
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.clone(), color(i), legend::Key::Line(i)))
            .chain(rules.iter().enumerate().map(|(k, r)| {
                (
                    r.name.clone(),
                    RULE_COLOURS[k % RULE_COLOURS.len()],
                    legend::Key::Rule,
                )
            }))
            .collect();
        legend::draw(&k, &entries).map_err(err)?;
    }
    Ok(())
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, chart: &Chart) -> R {
    root.fill(&WHITE).map_err(err)?;
    let area = root.titled(&chart.title, ("sans-serif", 26)).map_err(err)?;
    let cells = area.split_evenly(chart.grid);
    for (cell, panel) in cells.iter().zip(&chart.panels) {
        match panel {
            Panel::Bars {
                title,
                y_label,
                categories,
                series,
            } => draw_bars(cell, title, y_label, categories, series)?,
            Panel::Cdf {
                title,
                x_label,
                lines,
            } => draw_lines(
                cell,
                title,
                x_label,
                "requests at or below (%)",
                lines,
                XMode::Cdf,
                None,
                &[],
            )?,
            Panel::Timeline {
                title,
                y_label,
                series,
                y_max,
            } => draw_lines(
                cell,
                title,
                "time (s)",
                y_label,
                series,
                XMode::Time,
                *y_max,
                &[],
            )?,
            Panel::Lines {
                title,
                x_label,
                y_label,
                series,
            } => draw_lines(
                cell,
                title,
                x_label,
                y_label,
                series,
                XMode::Categories,
                None,
                &[],
            )?,
            Panel::Xy {
                title,
                x_label,
                y_label,
                series,
                rules,
            } => draw_lines(
                cell,
                title,
                x_label,
                y_label,
                series,
                XMode::Numeric,
                None,
                rules,
            )?,
        }
    }
    root.present().map_err(err)?;
    Ok(())
}

/// Writes the chart as a PNG file.
pub fn write_png(chart: &Chart, path: &Path) -> R {
    register_font();
    draw(
        BitMapBackend::new(path, chart.size).into_drawing_area(),
        chart,
    )
}

/// The chart as SVG text.
pub fn svg(chart: &Chart) -> anyhow::Result<String> {
    register_font();
    let mut s = String::new();
    draw(
        SVGBackend::with_string(&mut s, chart.size).into_drawing_area(),
        chart,
    )?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_on_a_narrow_axis_keep_the_decimals_that_tell_them_apart() {
        assert_eq!(tick_on(38.5, 2.4), "38.5");
        assert_eq!(tick_on(39.0, 2.4), "39");
        assert_eq!(tick_on(1.25, 2.4), "1.25");
        assert_eq!(tick_on(250.0, 1000.0), "250");
        assert_eq!(tick_on(0.125, 40.0), tick(0.125));
    }
}
