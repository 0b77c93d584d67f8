//! What a chart is, apart from which charts a report draws (`charts`, `experiments`) and how
//! they are drawn (`render`): a title and panels of series.

/// One panel of a chart.
#[derive(Debug, Clone)]
pub enum Panel {
    /// Grouped bars: one group per category, one bar per series.
    Bars {
        /// Panel title.
        title: String,
        /// Y axis label with unit.
        y_label: String,
        /// Category names (x axis).
        categories: Vec<String>,
        /// Series name and one value per category.
        series: Vec<(String, Vec<f64>)>,
    },
    /// Cumulative distributions: share of requests (y, %) at or below a latency (x).
    Cdf {
        /// Panel title.
        title: String,
        /// X axis label with unit.
        x_label: String,
        /// Series name and its (x, percent) points, x ascending.
        lines: Vec<(String, Vec<(f64, f64)>)>,
    },
    /// Lines against time: resource timelines (x in seconds from the scenario's first sample).
    Timeline {
        /// Panel title.
        title: String,
        /// Y axis label with unit.
        y_label: String,
        /// Series name and its (seconds, y) points.
        series: Vec<(String, Vec<(f64, f64)>)>,
        /// Where the y axis ends when no value goes beyond (CPU: 100 % per core).
        y_max: Option<f64>,
    },
    /// Lines against a numeric x.
    Lines {
        /// Panel title.
        title: String,
        /// X axis label with unit.
        x_label: String,
        /// Y axis label with unit.
        y_label: String,
        /// Series name and its (x, y) points.
        series: Vec<(String, Vec<(f64, f64)>)>,
    },
    /// Points against a numeric x (capacity steps), with reference lines.
    Xy {
        /// Panel title.
        title: String,
        /// X axis label with unit.
        x_label: String,
        /// Y axis label with unit.
        y_label: String,
        /// Series name and its (x, y) points, in the order joined.
        series: Vec<(String, Vec<(f64, f64)>)>,
        /// Thresholds and marks drawn dashed across the panel.
        rules: Vec<Rule>,
    },
}

/// A reference line across a numeric panel: a threshold (horizontal) or a found load
/// (vertical).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Legend name (`SLO tpot_p90<26ms`, `capacity 12`).
    pub name: String,
    /// Where it crosses the axis.
    pub at: f64,
    /// True: a vertical line at x = `at`; false: horizontal at y = `at`.
    pub vertical: bool,
}

/// A chart: a title and panels laid out in a grid.
#[derive(Debug, Clone)]
pub struct Chart {
    /// File stem (`ttft_percentiles`).
    pub name: String,
    /// Title over all panels.
    pub title: String,
    /// Panels, row by row.
    pub panels: Vec<Panel>,
    /// Grid (rows, columns).
    pub grid: (usize, usize),
    /// Pixel size.
    pub size: (u32, u32),
}
