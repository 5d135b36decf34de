//! The chart people look at instead of the report: seconds per image against pixels, one
//! colour per setup, measured points with their fitted lines, and the two anchor sizes.

use plotters::prelude::*;

use crate::calibrate::Calibration;
use crate::calibrate::propose::num;
use crate::calibrate::report::steps_text;

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("no setup has timings at two or more sizes: nothing to chart")]
    Empty,
    #[error("cannot draw the chart: {0}")]
    Draw(String),
}

const SIZE: (u32, u32) = (960, 600);

/// Renders the pixel sweeps of `cal` as an SVG document.
pub fn render_svg(cal: &Calibration) -> Result<String, ChartError> {
    if cal.pixel_sweeps.is_empty() {
        return Err(ChartError::Empty);
    }
    let mut svg = String::new();
    draw(cal, &mut svg).map_err(|e| ChartError::Draw(e.to_string()))?;
    Ok(svg)
}

fn draw<'a>(cal: &Calibration, svg: &'a mut String) -> Result<(), Box<dyn std::error::Error + 'a>> {
    const MP: f64 = 1e6;
    let b = &cal.baseline;
    let base_x = b.pixels() as f64 / MP;
    let anchor_x = f64::from(cal.anchor.0) * f64::from(cal.anchor.1) / MP;
    let xmax = cal
        .pixel_sweeps
        .iter()
        .flat_map(|s| s.fit.points.iter().map(|p| p.x / MP))
        .fold(anchor_x, f64::max)
        * 1.1;
    let ymax = cal
        .pixel_sweeps
        .iter()
        .flat_map(|s| {
            s.fit
                .points
                .iter()
                .map(|p| p.y)
                .chain([s.fit.at(xmax * MP)])
        })
        .fold(0.0, f64::max)
        * 1.08;

    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = format!(
        "Seconds per image vs pixels per setup: least-squares lines (dashed beyond the data), anchors {}x{} and {}x{}",
        b.width, b.height, cal.anchor.0, cal.anchor.1
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 17))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax)?;
    chart
        .configure_mesh()
        .x_desc("megapixels per image")
        .y_desc("seconds per image")
        .light_line_style(BLACK.mix(0.06))
        .draw()?;

    for (x, label) in [
        (base_x, format!("{}x{}", b.width, b.height)),
        (anchor_x, format!("{}x{}", cal.anchor.0, cal.anchor.1)),
    ] {
        chart.draw_series(LineSeries::new(
            [(x, 0.0), (x, ymax)],
            BLACK.mix(0.35).stroke_width(1),
        ))?;
        chart.draw_series(std::iter::once(Text::new(
            label,
            (x + xmax * 0.006, ymax * 0.03),
            ("sans-serif", 13),
        )))?;
    }

    for (i, sweep) in cal.pixel_sweeps.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let steps = steps_text(sweep.steps);
        let label = format!(
            "{} · {} · {} · R² {}",
            sweep.setup.family,
            sweep.setup.label(),
            steps,
            num(sweep.fit.r2, 3)
        );
        // Solid where there are measurements, dashed where the line is extended to an anchor.
        let (lo, hi) = sweep
            .fit
            .points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                (lo.min(p.x / MP), hi.max(p.x / MP))
            });
        let f = |x: f64| sweep.fit.at(x * MP);
        chart
            .draw_series(LineSeries::new(
                [(lo, f(lo)), (hi, f(hi))],
                color.stroke_width(2),
            ))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
        for (from, to) in [(base_x.min(lo), lo), (hi, anchor_x.max(hi))] {
            if to > from {
                chart.draw_series(DashedLineSeries::new(
                    [(from, f(from)), (to, f(to))],
                    6,
                    4,
                    color.stroke_width(1),
                ))?;
            }
        }
        chart.draw_series(
            sweep
                .fit
                .points
                .iter()
                .map(|p| Circle::new((p.x / MP, p.y), 4, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 12))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    root.present()?;
    Ok(())
}
