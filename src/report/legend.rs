//! Legends beside the plot, never over the data, and series told apart even when they coincide
//! (a marker shape per series, dashed lines once the colours repeat).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Series a panel can draw before its colours repeat.
pub(super) const COLOURS: usize = 10;

/// How a series looks in its legend.
#[derive(Debug, Clone, Copy)]
pub(super) enum Key {
    /// A filled square (bars).
    Bar,
    /// A line with the series' marker (lines: `i` is the series index).
    Line(usize),
    /// A dashed reference line without a marker (a threshold, a found load).
    Rule,
}

/// The marker shapes, in the order series get them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Marker {
    Circle,
    Triangle,
    Square,
    Cross,
}

/// Series `i`'s marker: shapes cycle, and each is a little smaller than the one before, so a
/// series drawn over an identical one leaves the other's marker showing around it.
pub(super) fn marker(i: usize) -> (Marker, i32) {
    const SHAPES: [Marker; 4] = [
        Marker::Circle,
        Marker::Triangle,
        Marker::Square,
        Marker::Cross,
    ];
    (SHAPES[i % 4], 6 - (i % 4) as i32)
}

/// Whether series `i` is drawn dashed (its colour is one an earlier series had).
pub(super) fn dashed(i: usize) -> bool {
    i >= COLOURS
}

/// Draws one marker at a pixel of `area`.
pub(super) fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    i: usize,
    c: RGBColor,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (shape, r) = marker(i);
    let (x, y) = at;
    match shape {
        Marker::Circle => area.draw(&Circle::new(at, r, c.filled())),
        Marker::Triangle => area.draw(&Polygon::new(
            vec![(x, y - r - 1), (x - r - 1, y + r), (x + r + 1, y + r)],
            c.filled(),
        )),
        Marker::Square => area.draw(&Rectangle::new(
            [(x - r, y - r), (x + r, y + r)],
            c.filled(),
        )),
        Marker::Cross => {
            area.draw(&PathElement::new(
                vec![(x - r, y - r), (x + r, y + r)],
                c.stroke_width(3),
            ))?;
            area.draw(&PathElement::new(
                vec![(x - r, y + r), (x + r, y - r)],
                c.stroke_width(3),
            ))
        }
    }
}

const FONT_PX: u32 = 15;
const ROW: i32 = 22;

/// The panel cut in two when it has a legend: the plot, and a column on its right for the
/// legend, as wide as the longest name needs (at most 45 % of the panel). One series: no
/// legend (the panel's title and axis say what it is).
pub(super) fn split<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    names: &[&str],
) -> (DrawingArea<DB, Shift>, Option<DrawingArea<DB, Shift>>) {
    if names.len() < 2 {
        return (area.clone(), None);
    }
    let w = area.dim_in_pixel().0 as i32;
    let longest = names.iter().map(|n| n.chars().count()).max().unwrap_or(0) as i32;
    let want = 44 + longest * 8;
    let col = want.min(w * 45 / 100).max(60);
    let (plot, legend) = area.split_horizontally(w - col);
    (plot, Some(legend))
}

/// Draws the legend down its column, from the top of the plot.
pub(super) fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, RGBColor, Key)],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (w, h) = area.dim_in_pixel();
    let chars = ((w as i32 - 44) / 8).max(4) as usize;
    let style = ("sans-serif", FONT_PX)
        .into_font()
        .into_text_style(area)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let rows = ((h as i32 - 60) / ROW).max(1) as usize;
    for (k, (name, c, key)) in entries.iter().enumerate() {
        let y = 52 + k as i32 * ROW;
        if k + 1 == rows && entries.len() > rows {
            area.draw(&Text::new(
                format!("… {} more", entries.len() - k),
                (8, y),
                style.clone(),
            ))?;
            break;
        }
        match key {
            Key::Bar => area.draw(&Rectangle::new([(8, y - 6), (22, y + 6)], c.filled()))?,
            Key::Line(i) => {
                let pts = vec![(4, y), (30, y)];
                if dashed(*i) {
                    area.draw(&PathElement::new(vec![(4, y), (12, y)], c.stroke_width(3)))?;
                    area.draw(&PathElement::new(vec![(20, y), (30, y)], c.stroke_width(3)))?;
                } else {
                    area.draw(&PathElement::new(pts, c.stroke_width(3)))?;
                }
                draw_marker(area, (17, y), *i, *c)?;
            }
            Key::Rule => {
                area.draw(&PathElement::new(vec![(4, y), (13, y)], c.stroke_width(2)))?;
                area.draw(&PathElement::new(vec![(20, y), (30, y)], c.stroke_width(2)))?;
            }
        }
        let label: String = if name.chars().count() > chars {
            let s: String = name.chars().take(chars - 1).collect();
            format!("{s}…")
        } else {
            name.clone()
        };
        area.draw(&Text::new(label, (38, y), style.clone()))?;
    }
    Ok(())
}
