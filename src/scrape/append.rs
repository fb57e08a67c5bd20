//! One scrape's body into storage: parse, look each series line up in the scrape cache,
//! resolve new lines (labels, target labels, metric relabeling, limits) and append. This
//! is the path every scraped sample takes; a cached line costs a parse of the line, one
//! hash lookup and an `append_ref`, with no allocation.

use super::cache::ScrapeCache;
use crate::model::{Labels, LabelsBuilder, METRIC_NAME};
use crate::relabel::{self, RelabelConfig};
use crate::storage::{AppendError, Appender, SeriesRef};
use crate::textparse::{self, Entry, Format, ParseError, Parser};

/// Per-scrape limits from the scrape config; 0 means no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub sample_limit: usize,
    pub label_limit: usize,
    pub label_name_length_limit: usize,
    pub label_value_length_limit: usize,
}

/// What the target loop knows that shapes every sample's labels.
pub struct AppendOptions<'a> {
    /// The target's labels (job, instance, ...), added to every series.
    pub target_labels: &'a Labels,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub metric_relabel: &'a [RelabelConfig],
    pub limits: Limits,
}

/// Counts of one scrape, reported as the synthetic `scrape_*` series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppendStats {
    /// Samples in the body (`scrape_samples_scraped`).
    pub scraped: usize,
    /// Samples left after metric relabeling (`scrape_samples_post_metric_relabeling`).
    pub post_relabel: usize,
    /// Series not in the cache before this scrape (`scrape_series_added`).
    pub series_added: usize,
    pub out_of_order: usize,
    pub duplicates: usize,
    pub out_of_bounds: usize,
}

/// Why a scrape's samples were not stored. The target is marked down with this text.
#[derive(Debug, thiserror::Error)]
pub enum AppendScrapeError {
    #[error("{0}")]
    Parse(#[from] ParseError),
    // Prometheus's wording, so alerts and dashboards that match on it keep working.
    #[error("sample limit exceeded")]
    SampleLimit,
    #[error(
        "label_limit exceeded (metric: {metric:.50}, number of labels: {count}, limit: {limit})"
    )]
    LabelLimit {
        metric: String,
        count: usize,
        limit: usize,
    },
    #[error(
        "label_name_length_limit exceeded (metric: {metric:.50}, label name: {name:.50}, length: {len}, limit: {limit})"
    )]
    LabelNameLength {
        metric: String,
        name: String,
        len: usize,
        limit: usize,
    },
    #[error(
        "label_value_length_limit exceeded (metric: {metric:.50}, label value: {value:.50}, length: {len}, limit: {limit})"
    )]
    LabelValueLength {
        metric: String,
        value: String,
        len: usize,
        limit: usize,
    },
    #[error("invalid series {0}: {1}")]
    Invalid(String, String),
}

/// Reusable buffers of one target loop, so new series don't allocate scratch space.
#[derive(Default)]
pub struct Scratch {
    builder: LabelsBuilder,
    stale: Vec<SeriesRef>,
}

/// Parses `body` and appends its samples at `default_t` (ms) unless the body carries its
/// own timestamps and `honor_timestamps` is set. Series that vanished since the last
/// committed scrape get staleness markers at `default_t`. `stats` counts what was seen,
/// up to the error if there is one (Prometheus reports those counts for failed scrapes
/// too). On error the caller rolls the appender back; the cache may then hold refs of
/// rolled-back series, which `append_ref` reports as unknown and which are then resolved
/// again.
#[allow(clippy::too_many_arguments)]
pub fn append_scrape(
    cache: &mut ScrapeCache,
    app: &mut dyn Appender,
    scratch: &mut Scratch,
    body: &[u8],
    format: Format,
    default_t: i64,
    opts: &AppendOptions<'_>,
    stats: &mut AppendStats,
) -> Result<(), AppendScrapeError> {
    *stats = AppendStats::default();
    let mut parser = Parser::new(body, format);
    while let Some(entry) = parser.next()? {
        let Entry::Series(line) = entry else {
            continue;
        };
        stats.scraped += 1;
        let t = match line.timestamp_ms {
            Some(ts) if opts.honor_timestamps => ts,
            _ => default_t,
        };
        let track_staleness = !(opts.honor_timestamps && line.timestamp_ms.is_some());

        let outcome = match cache.hit(line.series) {
            Some(e) => match e.series {
                None => Outcome::Dropped,
                Some(r) => match app.append_ref(r, t, line.value) {
                    Ok(()) => Outcome::Appended,
                    // Gone from storage (or rolled back): resolve it again by labels.
                    Err(AppendError::UnknownSeries(_)) => {
                        let (v, ts) = (line.value, track_staleness);
                        resolve(cache, app, scratch, line.series, t, v, opts, ts)?
                    }
                    Err(e) => Outcome::Rejected(e),
                },
            },
            None => {
                stats.series_added += 1;
                let (v, ts) = (line.value, track_staleness);
                resolve(cache, app, scratch, line.series, t, v, opts, ts)?
            }
        };
        match outcome {
            Outcome::Appended => {}
            Outcome::Dropped => continue,
            Outcome::Rejected(e) => count_rejection(stats, &e),
        }
        stats.post_relabel += 1;
        if opts.limits.sample_limit > 0 && stats.post_relabel > opts.limits.sample_limit {
            return Err(AppendScrapeError::SampleLimit);
        }
    }

    cache.vanished(false, &mut scratch.stale);
    for &r in &scratch.stale {
        // A rejected marker (the series moved on with explicit timestamps) is not an
        // error worth failing the scrape for.
        let _ = app.append_ref(r, default_t, crate::model::stale_nan());
    }
    Ok(())
}

/// Appends staleness markers at `t` for every series of the last committed scrape: used
/// after a failed scrape and when a target goes away.
pub fn append_all_stale(
    cache: &ScrapeCache,
    app: &mut dyn Appender,
    scratch: &mut Scratch,
    t: i64,
) {
    cache.vanished(true, &mut scratch.stale);
    for &r in &scratch.stale {
        let _ = app.append_ref(r, t, crate::model::stale_nan());
    }
}

/// What became of one sample.
enum Outcome {
    Appended,
    /// Metric relabeling dropped the series: not counted after relabeling.
    Dropped,
    /// The storage refused the sample (out of order, duplicate...): counted, scrape goes on.
    Rejected(AppendError),
}

fn count_rejection(stats: &mut AppendStats, e: &AppendError) {
    match e {
        AppendError::OutOfOrder => stats.out_of_order += 1,
        AppendError::DuplicateTimestamp => stats.duplicates += 1,
        AppendError::OutOfBounds => stats.out_of_bounds += 1,
        _ => {}
    }
}

/// The slow path for a line the cache doesn't know: build its labels, apply target labels
/// and metric relabeling, check limits, append by labels and remember the ref.
#[allow(clippy::too_many_arguments)]
fn resolve(
    cache: &mut ScrapeCache,
    app: &mut dyn Appender,
    scratch: &mut Scratch,
    series: &[u8],
    t: i64,
    v: f64,
    opts: &AppendOptions<'_>,
    track_staleness: bool,
) -> Result<Outcome, AppendScrapeError> {
    let b = &mut scratch.builder;
    // The line scan already validated the syntax; what can still fail here is a
    // repeated label name, which Prometheus too refuses only once the labels are built.
    textparse::parse_series_labels(series, b).map_err(|e| {
        AppendScrapeError::Invalid(String::from_utf8_lossy(series).into_owned(), e.msg)
    })?;
    merge_target_labels(b, opts.target_labels, opts.honor_labels);
    if !relabel::process(b, opts.metric_relabel) || b.get(METRIC_NAME).is_none() {
        cache.insert(series, None, track_staleness);
        return Ok(Outcome::Dropped);
    }
    check_label_limits(b, &opts.limits)?;
    let labels = b.labels();
    match app.append(&labels, t, v) {
        Ok(r) => {
            cache.insert(series, Some(r), track_staleness);
            Ok(Outcome::Appended)
        }
        Err(AppendError::InvalidSeries(s, why)) => {
            Err(AppendScrapeError::Invalid(s, why.to_string()))
        }
        Err(e) => Ok(Outcome::Rejected(e)),
    }
}

/// Adds the target's labels to a scraped series as Prometheus does: with honor_labels the
/// scraped value wins; otherwise the target's wins and the scraped one is kept as
/// `exported_<name>` (prefixed again until the name is free).
pub fn merge_target_labels(b: &mut LabelsBuilder, target: &Labels, honor_labels: bool) {
    if honor_labels {
        for l in target {
            if b.get(&l.name).is_none() {
                b.set(l.name.as_str(), l.value.as_str());
            }
        }
        return;
    }
    let mut conflicts: Vec<(String, String)> = Vec::new();
    for l in target {
        if let Some(v) = b.get(&l.name)
            && v != l.value
        {
            conflicts.push((l.name.clone(), v.to_string()));
        }
        b.set(l.name.as_str(), l.value.as_str());
    }
    for (name, value) in conflicts {
        let mut exported = format!("exported_{name}");
        while b.get(&exported).is_some() || target.has(&exported) {
            exported.insert_str(0, "exported_");
        }
        b.set(exported, value);
    }
}

fn check_label_limits(b: &LabelsBuilder, l: &Limits) -> Result<(), AppendScrapeError> {
    let metric = || b.get(METRIC_NAME).unwrap_or_default().to_string();
    if l.label_limit > 0 && b.len() > l.label_limit {
        return Err(AppendScrapeError::LabelLimit {
            metric: metric(),
            count: b.len(),
            limit: l.label_limit,
        });
    }
    if l.label_name_length_limit == 0 && l.label_value_length_limit == 0 {
        return Ok(());
    }
    for lbl in b.iter() {
        if l.label_name_length_limit > 0 && lbl.name.len() > l.label_name_length_limit {
            return Err(AppendScrapeError::LabelNameLength {
                metric: metric(),
                name: lbl.name.clone(),
                len: lbl.name.len(),
                limit: l.label_name_length_limit,
            });
        }
        if l.label_value_length_limit > 0 && lbl.value.len() > l.label_value_length_limit {
            return Err(AppendScrapeError::LabelValueLength {
                metric: metric(),
                value: lbl.value.clone(),
                len: lbl.value.len(),
                limit: l.label_value_length_limit,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_labels_win_and_scraped_ones_are_exported() {
        let mut b = LabelsBuilder::new();
        b.set("__name__", "m")
            .set("job", "scraped")
            .set("exported_job", "x");
        let target = Labels::from_pairs([("job", "j"), ("instance", "i")]);
        merge_target_labels(&mut b, &target, false);
        let l = b.labels();
        assert_eq!(l.get("job"), Some("j"));
        assert_eq!(l.get("instance"), Some("i"));
        assert_eq!(l.get("exported_job"), Some("x"));
        assert_eq!(l.get("exported_exported_job"), Some("scraped"));
    }

    #[test]
    fn honor_labels_keeps_scraped_values() {
        let mut b = LabelsBuilder::new();
        b.set("__name__", "m").set("job", "scraped");
        let target = Labels::from_pairs([("job", "j"), ("instance", "i")]);
        merge_target_labels(&mut b, &target, true);
        let l = b.labels();
        assert_eq!(l.get("job"), Some("scraped"));
        assert_eq!(l.get("instance"), Some("i"));
        assert!(!l.has("exported_job"));
    }
}
