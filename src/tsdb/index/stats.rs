//! Cardinality statistics over an inverted index, as Prometheus's
//! `/api/v1/status/tsdb` reports them: the top label names and pairs by series count,
//! by number of values and by the bytes their values take.

use super::MemPostings;

/// One entry of a top list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    pub name: String,
    pub value: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PostingsStats {
    /// Series per metric name (`__name__` value).
    pub series_count_by_metric_name: Vec<Stat>,
    /// Distinct values per label name.
    pub label_value_count_by_label_name: Vec<Stat>,
    /// Bytes of values per label name, each value counted once per series carrying it.
    pub memory_in_bytes_by_label_name: Vec<Stat>,
    /// Series per `name=value` pair.
    pub series_count_by_label_value_pair: Vec<Stat>,
    /// Distinct `name=value` pairs.
    pub num_label_pairs: u64,
}

/// Keeps the `limit` largest entries, largest first (ties by name, for stable output).
struct Top {
    limit: usize,
    items: Vec<Stat>,
}

impl Top {
    fn new(limit: usize) -> Self {
        Top {
            limit,
            items: Vec::new(),
        }
    }

    fn push(&mut self, name: impl FnOnce() -> String, value: u64) {
        if self.limit == 0 {
            return;
        }
        if self.items.len() == self.limit && self.items.last().is_some_and(|l| l.value >= value) {
            return;
        }
        let name = name();
        let at = self
            .items
            .partition_point(|s| s.value > value || (s.value == value && s.name < name));
        self.items.insert(at, Stat { name, value });
        self.items.truncate(self.limit);
    }
}

pub fn postings_stats(p: &MemPostings, limit: usize) -> PostingsStats {
    let mut by_metric = Top::new(limit);
    let mut value_counts = Top::new(limit);
    let mut bytes = Top::new(limit);
    let mut pairs = Top::new(limit);
    let mut num_pairs = 0;
    for (name, values) in p.counts() {
        let mut n_values = 0;
        let mut size = 0u64;
        for (value, series) in values {
            n_values += 1;
            size += value.len() as u64 * series;
            if name == crate::model::METRIC_NAME {
                by_metric.push(|| value.to_string(), series);
            }
            pairs.push(|| format!("{name}={value}"), series);
        }
        num_pairs += n_values;
        value_counts.push(|| name.to_string(), n_values);
        bytes.push(|| name.to_string(), size);
    }
    PostingsStats {
        series_count_by_metric_name: by_metric.items,
        label_value_count_by_label_name: value_counts.items,
        memory_in_bytes_by_label_name: bytes.items,
        series_count_by_label_value_pair: pairs.items,
        num_label_pairs: num_pairs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn top_lists_are_largest_first_and_limited() {
        let mut p = MemPostings::new();
        let a = |s: &str| Arc::<str>::from(s);
        let (name, job, inst) = (a("__name__"), a("job"), a("instance"));
        let series = [
            ("up", "node", "a"),
            ("up", "node", "b"),
            ("up", "api", "c"),
            ("http_requests_total", "api", "c"),
        ];
        for (i, (n, j, ins)) in series.iter().enumerate() {
            let (n, j, ins) = (a(n), a(j), a(ins));
            p.add(i as u32 + 1, [(&name, &n), (&job, &j), (&inst, &ins)]);
        }
        let s = postings_stats(&p, 2);
        let pairs = |v: &[Stat]| {
            v.iter()
                .map(|s| (s.name.clone(), s.value))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            pairs(&s.series_count_by_metric_name),
            [("up".into(), 3), ("http_requests_total".into(), 1)]
        );
        assert_eq!(
            pairs(&s.label_value_count_by_label_name),
            [("instance".into(), 3), ("__name__".into(), 2)]
        );
        // __name__: 3 x 2 ("up") + 19; instance: 4 x 1; job: 2 x 4 + 2 x 3.
        assert_eq!(
            pairs(&s.memory_in_bytes_by_label_name),
            [("__name__".into(), 25), ("job".into(), 14)]
        );
        assert_eq!(
            pairs(&s.series_count_by_label_value_pair),
            [("__name__=up".into(), 3), ("instance=c".into(), 2)]
        );
        assert_eq!(s.num_label_pairs, 2 + 2 + 3);
        assert_eq!(postings_stats(&p, 0).series_count_by_metric_name, vec![]);
    }
}
