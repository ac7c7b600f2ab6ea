//! Charts by day, drawn on the server as SVG (no script, no external
//! asset): stacked bars for counts, lines for rates with the reference
//! lines the mailbox providers judge by. Pure: values in, markup out.
//! Each chart carries a `<title>` and `<desc>`, and the caller puts the
//! same figures in a table beside it, so nothing is only in a picture.

use std::fmt::Write as _;

use crate::web::html::escape;

/// Width and height of the drawing (it scales with the page).
const W: f64 = 640.0;
const H: f64 = 220.0;
/// Room for the axis labels.
const LEFT: f64 = 52.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// Colours with at least 3:1 contrast on white, told apart without hue
/// too (the legend and the table name them).
pub const COLOURS: [&str; 8] = [
    "#0b57d0", "#a4161a", "#1e7e46", "#8a5a00", "#6b21a8", "#0e7490", "#be185d", "#4b5563",
];

/// One series: its name (for the legend) and one value per day.
pub struct Series<'a> {
    pub name: &'a str,
    pub values: Vec<f64>,
}

/// A horizontal reference line (a rate limit), with its label.
pub struct Line<'a> {
    pub label: &'a str,
    pub value: f64,
}

/// The legend: a swatch and the name of each series.
pub fn legend(series: &[Series<'_>]) -> String {
    let mut out = String::from("<ul class=\"legend\">");
    for (i, s) in series.iter().enumerate() {
        let _ = write!(
            out,
            "<li><i style=\"background:{}\"></i>{}</li>",
            COLOURS[i % COLOURS.len()],
            escape(s.name)
        );
    }
    out.push_str("</ul>");
    out
}

/// A "nice" top of the scale at or above `max` (1, 2 or 5 times a power of ten).
fn nice_top(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    for step in [1.0, 2.0, 5.0, 10.0] {
        if step * power >= max {
            return step * power;
        }
    }
    10.0 * power
}

/// How a value is written on the axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    /// A fraction, written as a percentage.
    Percent,
}

/// A value as a point's tooltip gives it.
fn value_label(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Count => format!("{v:.0}"),
        Unit::Percent => format!("{:.3} %", v * 100.0),
    }
}

fn axis_label(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Count if v >= 1_000_000.0 => format!("{:.1}M", v / 1_000_000.0),
        Unit::Count if v >= 10_000.0 => format!("{:.0}k", v / 1000.0),
        Unit::Count if v >= 1000.0 => format!("{:.1}k", v / 1000.0),
        Unit::Count => format!("{v:.0}"),
        Unit::Percent => format!("{:.2} %", v * 100.0),
    }
}

/// The frame: the horizontal grid with its labels and the day labels
/// (every `every`-th), for a scale of `top`.
fn frame(out: &mut String, days: &[String], top: f64, unit: Unit) {
    let plot_h = H - TOP - BOTTOM;
    for i in 0..=4 {
        let v = top * f64::from(i) / 4.0;
        let y = TOP + plot_h - plot_h * f64::from(i) / 4.0;
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{x2}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e5e7eb\"/>\
             <text x=\"{lx}\" y=\"{ty:.1}\" text-anchor=\"end\">{}</text>",
            escape(&axis_label(v, unit)),
            x2 = W - RIGHT,
            lx = LEFT - 6.0,
            ty = y + 4.0,
        );
    }
    let n = days.len().max(1);
    let slot = (W - LEFT - RIGHT) / n as f64;
    let every = n.div_ceil(8);
    for (i, day) in days.iter().enumerate() {
        if i % every != 0 && i != n - 1 {
            continue;
        }
        let x = LEFT + slot * (i as f64 + 0.5);
        let _ = write!(
            out,
            "<text x=\"{x:.1}\" y=\"{y}\" text-anchor=\"middle\">{}</text>",
            escape(day),
            y = H - 8.0
        );
    }
}

fn open(out: &mut String, title: &str, desc: &str) {
    let _ = write!(
        out,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title>{}</title><desc>{}</desc>",
        escape(title),
        escape(desc)
    );
}

/// Stacked bars, one per day (`days` are the labels under them).
pub fn bars(title: &str, desc: &str, days: &[String], series: &[Series<'_>]) -> String {
    let totals: Vec<f64> = (0..days.len())
        .map(|d| {
            series
                .iter()
                .map(|s| s.values.get(d).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let top = nice_top(totals.iter().copied().fold(0.0, f64::max));
    let mut out = String::new();
    open(&mut out, title, desc);
    frame(&mut out, days, top, Unit::Count);
    let plot_h = H - TOP - BOTTOM;
    let slot = (W - LEFT - RIGHT) / days.len().max(1) as f64;
    let width = (slot * 0.7).max(1.0);
    for (d, day) in days.iter().enumerate() {
        let mut base = TOP + plot_h;
        let x = LEFT + slot * d as f64 + (slot - width) / 2.0;
        for (i, s) in series.iter().enumerate() {
            let v = s.values.get(d).copied().unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let h = plot_h * v / top;
            base -= h;
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{base:.1}\" width=\"{width:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{} {}: {v}</title></rect>",
                COLOURS[i % COLOURS.len()],
                escape(day),
                escape(s.name),
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// Lines, one point per day, with reference lines (dashed) across.
pub fn lines(
    title: &str,
    desc: &str,
    unit: Unit,
    days: &[String],
    series: &[Series<'_>],
    references: &[Line<'_>],
) -> String {
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .chain(references.iter().map(|l| l.value))
        .fold(0.0, f64::max);
    let top = nice_top(max * 1.1);
    let mut out = String::new();
    open(&mut out, title, desc);
    frame(&mut out, days, top, unit);
    let plot_h = H - TOP - BOTTOM;
    let slot = (W - LEFT - RIGHT) / days.len().max(1) as f64;
    let y_of = |v: f64| TOP + plot_h - plot_h * v.clamp(0.0, top) / top;
    for l in references {
        let y = y_of(l.value);
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{x2}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#1b1f24\" stroke-dasharray=\"5 4\"/>\
             <text x=\"{x2}\" y=\"{ty:.1}\" text-anchor=\"end\">{}</text>",
            escape(l.label),
            x2 = W - RIGHT,
            ty = y - 4.0,
        );
    }
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .map(|(d, v)| format!("{:.1},{:.1}", LEFT + slot * (d as f64 + 0.5), y_of(*v)))
            .collect();
        let _ = write!(
            out,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            points.join(" ")
        );
        for (d, v) in s.values.iter().enumerate() {
            let _ = write!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"><title>{} {}: {}</title></circle>",
                LEFT + slot * (d as f64 + 0.5),
                y_of(*v),
                escape(days.get(d).map(String::as_str).unwrap_or_default()),
                escape(s.name),
                escape(&value_label(*v, unit)),
            );
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_are_round() {
        assert_eq!(nice_top(0.0), 1.0);
        assert_eq!(nice_top(7.0), 10.0);
        assert_eq!(nice_top(120.0), 200.0);
        assert_eq!(nice_top(0.0031), 0.005);
        assert_eq!(nice_top(5000.0), 5000.0);
    }

    #[test]
    fn bars_stack_and_escape() {
        let days = vec!["11-30".to_owned(), "12-01".to_owned()];
        let svg = bars(
            "Accepted <all>",
            "d",
            &days,
            &[
                Series {
                    name: "deliver",
                    values: vec![3.0, 0.0],
                },
                Series {
                    name: "suppress",
                    values: vec![1.0, 2.0],
                },
            ],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("Accepted &lt;all&gt;"));
        // Three bars drawn (a zero draws none), each with its figure.
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("11-30 deliver: 3"));
    }

    #[test]
    fn rates_show_their_limits() {
        let days = vec!["a".to_owned()];
        let svg = lines(
            "rates",
            "d",
            Unit::Percent,
            &days,
            &[Series {
                name: "complaints",
                values: vec![0.002],
            }],
            &[Line {
                label: "0.3 %",
                value: 0.003,
            }],
        );
        assert!(svg.contains("stroke-dasharray"));
        assert!(svg.contains("complaints: 0.200 %"));
        assert_eq!(axis_label(0.001, Unit::Percent), "0.10 %");
        assert_eq!(axis_label(12_500.0, Unit::Count), "12k");
    }
}
