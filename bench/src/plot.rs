//! A PNG bar chart of a run: per result row, the workers' Mpps (blue) over the pass-through
//! ceiling (grey). Labels need a TrueType font: DejaVu Sans is loaded from the system if it is
//! there (Debian's fonts-dejavu-core); without it the chart is drawn with bars only.

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::measure::Row;

/// Where the label font is looked for.
pub const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

const ROW_H: u32 = 26;
const TOP: u32 = 50;
const WIDTH: u32 = 1100;

/// Registers the label font once; whether text can be drawn.
fn font() -> bool {
    static LOADED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LOADED.get_or_init(|| {
        FONT_PATHS.iter().any(|p| {
            std::fs::read(p)
                .ok()
                .map(|b| &*Box::leak(b.into_boxed_slice()))
                .is_some_and(|b| register_font("sans-serif", FontStyle::Normal, b).is_ok())
        })
    })
}

fn label(r: &Row) -> String {
    let conns = match r.conns {
        n if n >= 1_000_000 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 => format!("{}K", n / 1_000),
        n => n.to_string(),
    };
    let gens = if r.generators > 1 {
        format!(" {}g", r.generators)
    } else {
        String::new()
    };
    format!(
        "{} {}B {} conns, {}w{gens}",
        r.scenario, r.size, conns, r.workers
    )
}

/// Draws `rows` into the PNG file `path` with `title`.
pub fn draw(path: &std::path::Path, title: &str, rows: &[Row]) -> Result<(), String> {
    let text = font();
    let height = TOP + ROW_H * rows.len().max(1) as u32 + 30;
    let root = BitMapBackend::new(path, (WIDTH, height)).into_drawing_area();
    let e = |e: DrawingAreaErrorKind<_>| format!("plot {}: {e}", path.display());
    root.fill(&WHITE).map_err(e)?;
    let x0: i32 = if text { 260 } else { 10 };
    let span = (WIDTH as i32 - x0 - 90) as f64;
    let max = rows
        .iter()
        .map(|r| r.mpps.max(r.ceiling_mpps))
        .fold(1e-9, f64::max);
    let px = |v: f64| x0 + (v / max * span).round() as i32;
    let blue = RGBColor(40, 90, 200);
    let grey = RGBColor(190, 190, 190);
    if text {
        let f = ("sans-serif", 18).into_font();
        root.draw(&Text::new(title.to_string(), (10, 12), f))
            .map_err(e)?;
        let f = ("sans-serif", 13).into_font();
        root.draw(&Rectangle::new([(x0, 38), (x0 + 12, 46)], blue.filled()))
            .map_err(e)?;
        root.draw(&Text::new(
            "director workers, Mpps",
            (x0 + 16, 35),
            f.clone(),
        ))
        .map_err(e)?;
        root.draw(&Rectangle::new(
            [(x0 + 200, 38), (x0 + 212, 46)],
            grey.filled(),
        ))
        .map_err(e)?;
        root.draw(&Text::new("pass-through ceiling, Mpps", (x0 + 216, 35), f))
            .map_err(e)?;
    }
    for (i, r) in rows.iter().enumerate() {
        let y = (TOP + ROW_H * i as u32) as i32;
        let h = ROW_H as i32;
        root.draw(&Rectangle::new(
            [(x0, y + 2), (px(r.ceiling_mpps), y + h - 4)],
            grey.filled(),
        ))
        .map_err(e)?;
        root.draw(&Rectangle::new(
            [(x0, y + 6), (px(r.mpps), y + h - 8)],
            blue.filled(),
        ))
        .map_err(e)?;
        if text {
            let f = ("sans-serif", 13).into_font();
            root.draw(&Text::new(label(r), (10, y + 6), f.clone()))
                .map_err(e)?;
            let v = format!("{:.2} / {:.2}", r.mpps, r.ceiling_mpps);
            root.draw(&Text::new(
                v,
                (px(r.ceiling_mpps.max(r.mpps)) + 6, y + 6),
                f,
            ))
            .map_err(e)?;
        }
    }
    root.present().map_err(e)?;
    Ok(())
}
