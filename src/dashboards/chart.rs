//! Charts as SVG, rendered on the server: a time series, bars, a funnel, a heat map, and
//! paths. Hand-made rather than a plotting crate: a few shapes, text the browser lays out,
//! and each chart labelled for screen readers (`role="img"`, `<title>`, `<desc>`) with a
//! `<title>` on every mark, so its number is one hover away. Each mark has the class `mark`.

use std::fmt::Write as _;

use super::view::Chart;
use crate::html::escape;

/// Width of the charts that take a whole row, and of those that share it (SVG units ≈ CSS px
/// at 1280 px, so text stays the size it says).
const WIDE: f64 = 1200.0;
const NARROW: f64 = 580.0;
/// Width of the phone drawing of the time series and bars (a 390 px screen's card is about
/// 340 px wide, so its 11–12 unit text stays 10–12 px there).
const COMPACT: f64 = 360.0;
const PALETTE: [&str; 6] = [
    "#2563eb", "#94a3b8", "#16a34a", "#db2777", "#d97706", "#7c3aed",
];

/// Which drawing of a chart: the only one, or the desktop or phone one of a chart drawn
/// twice. Every drawing scales to its card (`viewBox`, `width: 100%`); a chart drawn twice
/// gets a second, narrower drawing for phones, where the wide one's text would shrink to
/// 3 px, and the stylesheet shows one of the two (`.chart.full` above 700 px, else
/// `.chart.compact`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drawing {
    Only,
    Full,
    Compact,
}

impl Drawing {
    fn class(self) -> &'static str {
        match self {
            Drawing::Only => "chart",
            Drawing::Full => "chart full",
            Drawing::Compact => "chart compact",
        }
    }

    /// The element ids' suffix: the two drawings of a chart are both in the page.
    fn id(self, id: &str) -> String {
        match self {
            Drawing::Compact => format!("{id}-c"),
            Drawing::Only | Drawing::Full => id.to_string(),
        }
    }
}

fn open(out: &mut String, id: &str, title: &str, desc: &str, width: f64, height: f64) {
    open_as(out, Drawing::Only, id, title, desc, width, height);
}

fn open_as(
    out: &mut String,
    drawing: Drawing,
    id: &str,
    title: &str,
    desc: &str,
    width: f64,
    height: f64,
) {
    let id = drawing.id(id);
    let _ = write!(
        out,
        r#"<svg class="{}" role="img" viewBox="0 0 {width} {height}" preserveAspectRatio="xMidYMid meet" aria-labelledby="{id}-t {id}-d"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>"#,
        drawing.class(),
        escape(title),
        escape(desc)
    );
}

/// A nice upper bound for an axis: 1, 2 or 5 times a power of ten, at least `max`.
fn nice_max(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * power)
}

/// A line series of a time series chart.
pub struct Series {
    pub name: String,
    /// One per day; NaN for a day without a value (drawn as a gap, not as 0).
    pub values: Vec<f64>,
    /// The comparison period, drawn dashed and grey.
    pub comparison: bool,
}

/// Lines over the days `labels` (one value per day per series). `format` writes a value.
/// Drawn twice: for the desktop and for a phone. The description ends on the total of the
/// series that are not comparisons.
pub fn time_series(
    id: &str,
    title: &str,
    labels: &[String],
    series: &[Series],
    format: &dyn Fn(f64) -> String,
) -> Chart {
    let total: f64 = series
        .iter()
        .filter(|s| !s.comparison)
        .flat_map(|s| &s.values)
        .filter(|v| v.is_finite())
        .sum();
    time_series_summed_up(
        id,
        title,
        labels,
        series,
        format,
        &format!("total {}", format(total)),
    )
}

/// [`time_series`] whose description ends on `summary` instead of a total: for a rate,
/// whose daily values do not add up (`CTR over the range 1.2%`).
pub fn time_series_summed_up(
    id: &str,
    title: &str,
    labels: &[String],
    series: &[Series],
    format: &dyn Fn(f64) -> String,
    summary: &str,
) -> Chart {
    let desc = format!(
        "{} over {} days from {} to {}; {summary}.",
        series.first().map_or("", |s| s.name.as_str()),
        labels.len(),
        labels.first().map_or("", String::as_str),
        labels.last().map_or("", String::as_str),
    );
    let mut svg = String::new();
    let marks = lines(
        &mut svg,
        Drawing::Full,
        id,
        title,
        &desc,
        labels,
        series,
        format,
    );
    let mut compact = String::new();
    lines(
        &mut compact,
        Drawing::Compact,
        id,
        title,
        &desc,
        labels,
        series,
        format,
    );
    Chart {
        title: title.to_string(),
        svg,
        compact: Some(compact),
        marks,
        wide: true,
    }
}

/// One drawing of [`time_series`]; returns the number of marks.
#[allow(clippy::too_many_arguments)]
fn lines(
    out: &mut String,
    drawing: Drawing,
    id: &str,
    title: &str,
    desc: &str,
    labels: &[String],
    series: &[Series],
    format: &dyn Fn(f64) -> String,
) -> usize {
    let compact = drawing == Drawing::Compact;
    let (width, height) = if compact {
        (COMPACT, 220.0)
    } else {
        (WIDE, 240.0)
    };
    let (left, right, top, bottom) = (if compact { 48.0 } else { 64.0 }, 12.0, 16.0, 28.0);
    let (x_labels, dot) = if compact { (3, 2.0) } else { (6, 3.0) };
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let max = nice_max(
        series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max),
    );
    let n = labels.len().max(1);
    let x = |i: usize| {
        left + plot_w
            * if n == 1 {
                0.5
            } else {
                i as f64 / (n - 1) as f64
            }
    };
    let y = |v: f64| top + plot_h * (1.0 - v.max(0.0) / max);
    open_as(out, drawing, id, title, desc, width, height);
    for k in 0..=4 {
        let v = max * k as f64 / 4.0;
        let _ = write!(
            out,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e2e8f0"/><text x="{}" y="{:.1}" text-anchor="end" font-size="11" fill="#475569">{}</text>"##,
            width - right,
            left - 6.0,
            y(v) + 4.0,
            escape(&format(v)),
            y = y(v)
        );
    }
    let step = (n / x_labels).max(1);
    for (i, label) in labels.iter().enumerate().filter(|(i, _)| i % step == 0) {
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{}" text-anchor="middle" font-size="11" fill="#475569">{}</text>"##,
            x(i),
            height - 8.0,
            escape(label.get(5..).unwrap_or(label))
        );
    }
    let mut marks = 0;
    for (s_index, s) in series.iter().enumerate() {
        let color = if s.comparison {
            "#94a3b8"
        } else {
            PALETTE[s_index % PALETTE.len()]
        };
        let dash = if s.comparison {
            r#" stroke-dasharray="5 4""#
        } else {
            ""
        };
        // A day without a value (NaN: a rate with no denominator) is a gap in the line.
        let mut runs: Vec<Vec<String>> = vec![Vec::new()];
        for (i, v) in s.values.iter().enumerate() {
            if v.is_finite() {
                if let Some(run) = runs.last_mut() {
                    run.push(format!("{:.1},{:.1}", x(i), y(*v)));
                }
            } else if runs.last().is_some_and(|r| !r.is_empty()) {
                runs.push(Vec::new());
            }
        }
        for points in runs.iter().filter(|r| !r.is_empty()) {
            let _ = write!(
                out,
                r#"<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"><title>{}</title></polyline>"#,
                points.join(" "),
                escape(&s.name)
            );
        }
        if !s.comparison {
            for (i, v) in s.values.iter().enumerate().filter(|(_, v)| v.is_finite()) {
                marks += 1;
                let _ = write!(
                    out,
                    r#"<circle class="mark" cx="{:.1}" cy="{:.1}" r="{dot}" fill="{color}"><title>{}: {}</title></circle>"#,
                    x(i),
                    y(*v),
                    escape(labels.get(i).map_or("", String::as_str)),
                    escape(&format(*v))
                );
            }
        }
    }
    // The legend, above the plot.
    let legend_step = if compact {
        (plot_w / series.len().max(1) as f64).min(150.0)
    } else {
        190.0
    };
    for (i, s) in series.iter().enumerate() {
        let color = if s.comparison {
            "#94a3b8"
        } else {
            PALETTE[i % PALETTE.len()]
        };
        let _ = write!(
            out,
            r##"<rect x="{}" y="3" width="10" height="3" fill="{color}"/><text x="{}" y="10" font-size="11" fill="#334155">{}</text>"##,
            left + 8.0 + legend_step * i as f64,
            left + 22.0 + legend_step * i as f64,
            escape(&s.name)
        );
    }
    out.push_str("</svg>");
    marks
}

/// Horizontal bars, one per (label, value), largest scale first as given. Drawn twice: for
/// the desktop and for a phone.
pub fn bars(
    id: &str,
    title: &str,
    bars: &[(String, f64)],
    format: &dyn Fn(f64) -> String,
) -> Chart {
    let desc = bars
        .iter()
        .map(|(l, v)| format!("{l}: {}", format(*v)))
        .collect::<Vec<_>>()
        .join("; ");
    let mut svg = String::new();
    bar_rows(&mut svg, Drawing::Full, id, title, &desc, bars, format);
    let mut compact = String::new();
    bar_rows(
        &mut compact,
        Drawing::Compact,
        id,
        title,
        &desc,
        bars,
        format,
    );
    Chart {
        title: title.to_string(),
        svg,
        compact: Some(compact),
        marks: bars.len(),
        wide: false,
    }
}

/// One drawing of [`bars`].
fn bar_rows(
    out: &mut String,
    drawing: Drawing,
    id: &str,
    title: &str,
    desc: &str,
    bars: &[(String, f64)],
    format: &dyn Fn(f64) -> String,
) {
    let compact = drawing == Drawing::Compact;
    let (width, label_w, label_chars, value_w) = if compact {
        (COMPACT, 124.0, 19, 84.0)
    } else {
        (NARROW, 230.0, 34, 90.0)
    };
    let row = 26.0;
    let height = (bars.len().max(1) as f64) * row + 8.0;
    let max = bars
        .iter()
        .map(|(_, v)| *v)
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let plot_w = width - label_w - value_w;
    open_as(out, drawing, id, title, desc, width, height);
    for (i, (label, value)) in bars.iter().enumerate() {
        let y = 4.0 + i as f64 * row;
        let w = (plot_w * value.max(0.0) / max).max(1.0);
        let short: String = if label.chars().count() > label_chars {
            let head: String = label.chars().take(label_chars - 1).collect();
            format!("{head}…")
        } else {
            label.clone()
        };
        let _ = write!(
            out,
            r##"<text x="{}" y="{:.1}" text-anchor="end" font-size="12" fill="#334155">{}</text><rect class="mark" x="{label_w}" y="{y:.1}" width="{w:.1}" height="{}" rx="2" fill="{}"><title>{}: {}</title></rect><text x="{:.1}" y="{:.1}" font-size="12" fill="#0f172a">{}</text>"##,
            label_w - 8.0,
            y + 15.0,
            escape(&short),
            row - 8.0,
            PALETTE[0],
            escape(label),
            escape(&format(*value)),
            label_w + w + 6.0,
            y + 15.0,
            escape(&format(*value))
        );
    }
    out.push_str("</svg>");
}

/// A funnel: one centred bar per step, as wide as its sessions, with the conversion from
/// the previous step.
pub fn funnel(id: &str, title: &str, steps: &[(String, i64)]) -> Chart {
    let row = 44.0;
    let height = (steps.len().max(1) as f64) * row + 8.0;
    let max = steps.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1) as f64;
    let desc = steps
        .iter()
        .map(|(l, v)| format!("{l}: {v} sessions"))
        .collect::<Vec<_>>()
        .join("; ");
    let mut out = String::new();
    open(&mut out, id, title, &desc, NARROW, height);
    let centre = NARROW / 2.0 + 60.0;
    let full = NARROW - 180.0;
    let mut previous: Option<i64> = None;
    for (i, (label, sessions)) in steps.iter().enumerate() {
        let y = 4.0 + i as f64 * row;
        let w = (full * *sessions as f64 / max).max(2.0);
        // `3,185` as the tables write it.
        let count = super::view::Value::Count(*sessions as f64).display();
        let inside = w >= 8.0 * (count.len() as f64 + 2.0);
        let from_previous = previous
            .filter(|p| *p > 0)
            .map(|p| {
                format!(
                    " ({:.1}% of the step before)",
                    *sessions as f64 * 100.0 / p as f64
                )
            })
            .unwrap_or_default();
        let _ = write!(
            out,
            r##"<text x="110" y="{:.1}" text-anchor="end" font-size="12" fill="#334155">{}</text><rect class="mark" x="{:.1}" y="{y:.1}" width="{w:.1}" height="{}" rx="3" fill="{}"><title>{}: {} sessions{}</title></rect><text x="{:.1}" y="{:.1}" text-anchor="{}" font-size="12" fill="{}" font-weight="600">{}</text>"##,
            y + 22.0,
            escape(label),
            centre - w / 2.0,
            row - 10.0,
            PALETTE[0],
            escape(label),
            count,
            escape(&from_previous),
            // The count inside a bar wide enough for it, else just after it.
            if inside {
                centre
            } else {
                centre + w / 2.0 + 6.0
            },
            y + 22.0,
            if inside { "middle" } else { "start" },
            if inside { "#fff" } else { "#0f172a" },
            count
        );
        previous = Some(*sessions);
    }
    out.push_str("</svg>");
    Chart {
        title: title.to_string(),
        svg: out,
        compact: None,
        marks: steps.len(),
        wide: false,
    }
}

/// A heat map: rows × columns of values (missing cells blank), darker when larger.
pub fn heat_map(
    id: &str,
    title: &str,
    rows: &[String],
    columns: &[String],
    cells: &[Vec<Option<f64>>],
    format: &dyn Fn(f64) -> String,
) -> Chart {
    let label_w = 80.0;
    let cell_h = 30.0;
    let cell_w = ((WIDE - label_w - 8.0) / columns.len().max(1) as f64).min(90.0);
    let height = 24.0 + cell_h * rows.len().max(1) as f64 + 4.0;
    let max = cells
        .iter()
        .flatten()
        .flatten()
        .copied()
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let mut out = String::new();
    let desc = format!(
        "{} cohorts (rows) by months since the first order (columns).",
        rows.len()
    );
    open(&mut out, id, title, &desc, WIDE, height);
    for (j, column) in columns.iter().enumerate() {
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="16" text-anchor="middle" font-size="11" fill="#475569">{}</text>"##,
            label_w + cell_w * (j as f64 + 0.5),
            escape(column)
        );
    }
    let mut marks = 0;
    for (i, row) in rows.iter().enumerate() {
        let y = 22.0 + cell_h * i as f64;
        let _ = write!(
            out,
            r##"<text x="{}" y="{:.1}" text-anchor="end" font-size="11" fill="#334155">{}</text>"##,
            label_w - 6.0,
            y + cell_h / 2.0 + 4.0,
            escape(row)
        );
        for (j, cell) in cells.get(i).into_iter().flatten().enumerate() {
            let Some(value) = cell else { continue };
            marks += 1;
            let strength = (value / max).clamp(0.0, 1.0);
            let light = 95.0 - 55.0 * strength;
            let ink = if strength > 0.55 { "#fff" } else { "#0f172a" };
            let x = label_w + cell_w * j as f64;
            let _ = write!(
                out,
                r##"<rect class="mark" x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="hsl(221 83% {light:.0}%)"><title>{} + {}: {}</title></rect><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12" fill="{ink}">{}</text>"##,
                cell_w - 1.0,
                cell_h - 1.0,
                escape(row),
                escape(columns.get(j).map_or("", String::as_str)),
                escape(&format(*value)),
                x + cell_w / 2.0,
                y + cell_h / 2.0 + 4.0,
                escape(&format(*value))
            );
        }
    }
    out.push_str("</svg>");
    Chart {
        title: title.to_string(),
        svg: out,
        compact: None,
        marks,
        wide: true,
    }
}

/// Conversion paths: each path as a row of channel chips joined by arrows, with a bar for
/// its orders.
pub fn paths(id: &str, title: &str, paths: &[(Vec<String>, f64)], unit: &str) -> Chart {
    let row = 30.0;
    let height = (paths.len().max(1) as f64) * row + 8.0;
    let max = paths
        .iter()
        .map(|(_, v)| *v)
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let chips_w = 430.0;
    let mut out = String::new();
    let desc = paths
        .iter()
        .map(|(p, v)| format!("{}: {v} {unit}", p.join(" then ")))
        .collect::<Vec<_>>()
        .join("; ");
    open(&mut out, id, title, &desc, WIDE, height);
    for (i, (channels, value)) in paths.iter().enumerate() {
        let y = 4.0 + i as f64 * row;
        let mut x = 0.0;
        let shown = channels.len().min(4);
        let chip_w = ((chips_w - 16.0 * shown as f64) / shown.max(1) as f64).min(120.0);
        for (k, channel) in channels.iter().take(shown).enumerate() {
            let text = if k == 3 && channels.len() > 4 {
                format!("+{} more", channels.len() - 3)
            } else {
                channel.clone()
            };
            let color = PALETTE
                [(channel.len() + channel.bytes().map(usize::from).sum::<usize>()) % PALETTE.len()];
            let _ = write!(
                out,
                r##"<rect x="{x:.1}" y="{y:.1}" width="{chip_w:.1}" height="22" rx="11" fill="{color}" fill-opacity="0.15" stroke="{color}"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11" fill="#0f172a">{}</text>"##,
                x + chip_w / 2.0,
                y + 15.0,
                escape(&text)
            );
            x += chip_w;
            if k + 1 < shown {
                let _ = write!(
                    out,
                    r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12" fill="#64748b">→</text>"##,
                    x + 8.0,
                    y + 15.0
                );
                x += 16.0;
            }
        }
        let bar_x = chips_w + 10.0;
        let w = ((WIDE - bar_x - 60.0) * value / max).max(1.0);
        let _ = write!(
            out,
            r##"<rect class="mark" x="{bar_x:.1}" y="{:.1}" width="{w:.1}" height="14" rx="2" fill="{}"><title>{}: {value} {unit}</title></rect><text x="{:.1}" y="{:.1}" font-size="11" fill="#0f172a">{value}</text>"##,
            y + 4.0,
            PALETTE[0],
            escape(&channels.join(" → ")),
            bar_x + w + 4.0,
            y + 15.0
        );
    }
    out.push_str("</svg>");
    Chart {
        title: title.to_string(),
        svg: out,
        compact: None,
        marks: paths.len(),
        wide: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_labelled_escaped_and_count_their_marks() {
        let chart = bars(
            "b",
            "Revenue <by> channel",
            &[("Email & SMS".into(), 10.0), ("Direct".into(), 5.0)],
            &|v| format!("{v:.0}"),
        );
        assert_eq!(chart.marks, 2);
        assert!(chart.svg.contains(r#"role="img""#));
        assert!(
            chart
                .svg
                .contains("<title id=\"b-t\">Revenue &lt;by&gt; channel</title>")
        );
        assert!(chart.svg.contains("Email &amp; SMS"));
        assert_eq!(chart.svg.matches("class=\"mark\"").count(), 2);
        let line = time_series(
            "t",
            "Revenue",
            &["2026-01-01".into(), "2026-01-02".into()],
            &[Series {
                name: "This period".into(),
                values: vec![1.0, 2.0],
                comparison: false,
            }],
            &|v| format!("{v}"),
        );
        assert_eq!(line.marks, 2);
        // Drawn for the desktop and for a phone: each scales to its card (a viewBox, no
        // fixed width), each labelled, with ids of its own.
        let compact = line.compact.as_deref().expect("a phone drawing");
        assert!(line.svg.starts_with(r#"<svg class="chart full""#));
        assert!(compact.starts_with(r#"<svg class="chart compact""#));
        assert!(compact.contains(r#"viewBox="0 0 360 220""#));
        assert!(compact.contains(r#"<title id="t-c-t">Revenue</title>"#));
        assert!(!line.svg.contains(" width=\"1200\"") && !compact.contains(" width=\"360\""));
        assert_eq!(compact.matches("class=\"mark\"").count(), 2);
        // A day without a value is a gap: two lines, no mark for it.
        let gap = time_series(
            "g",
            "CTR",
            &[
                "2026-01-01".into(),
                "2026-01-02".into(),
                "2026-01-03".into(),
            ],
            &[Series {
                name: "CTR".into(),
                values: vec![0.01, f64::NAN, 0.02],
                comparison: false,
            }],
            &|v| format!("{v}"),
        );
        assert_eq!(gap.marks, 2);
        assert_eq!(gap.svg.matches("<polyline").count(), 2);
        assert!(!gap.svg.contains("NaN"));
        assert_eq!(nice_max(730.0), 1000.0);
        assert_eq!(nice_max(0.0), 1.0);
    }
}
