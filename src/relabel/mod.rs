//! Relabeling: the `relabel_config` schema and every action Prometheus defines
//! (replace, keep, drop, keepequal, dropequal, hashmod, labelmap, labeldrop, labelkeep,
//! lowercase, uppercase), with Prometheus's defaults, validation messages and
//! replacement-template rules. Used for target relabeling, metric relabeling, alert
//! relabeling and remote-write relabeling alike. Knows nothing about where label sets
//! come from or go to.
//!
//! ```
//! use cairn::model::Labels;
//! use cairn::relabel::{process, RelabelConfig};
//!
//! let rules: Vec<RelabelConfig> = serde_saphyr::from_str(
//!     "- source_labels: [__address__]\n  regex: '([^:]+):\\d+'\n  target_label: host\n",
//! )
//! .unwrap();
//! let mut lb = Labels::from_pairs([("__address__", "db1:9100")]).builder();
//! assert!(process(&mut lb, &rules));
//! assert_eq!(lb.get("host"), Some("db1"));
//! ```

mod expand;
mod names;
mod process;
mod rule;

pub use names::{NameValidation, is_legacy_label_name};
pub use process::process;
pub use rule::{Action, Regex, RelabelConfig, RelabelError};
