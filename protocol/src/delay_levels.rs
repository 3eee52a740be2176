//! RocketMQ's delay levels (`messageDelayLevel`): the documented default
//! table and its parser, shared by the broker and the load generator.

/// Java's default `messageDelayLevel`: level 1 is 1 s, level 18 is 2 h.
pub const DEFAULT_DELAY_LEVELS: &str = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h";

/// `"1s 5s 10s 30s 1m ... 2h"`: each level a number with unit s, m, h or d,
/// as Java's `messageDelayLevel`.
pub fn parse_delay_levels(v: &str) -> Result<Vec<u64>, String> {
    let mut out = Vec::new();
    for item in v.split_whitespace() {
        let bad = || format!("messageDelayLevel: {item:?} is not a delay like 5s, 10m, 2h or 1d");
        let unit = item.chars().last().ok_or_else(bad)?;
        let n: u64 = item[..item.len() - unit.len_utf8()]
            .parse()
            .map_err(|_| bad())?;
        let ms: u64 = match unit {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            _ => return Err(bad()),
        };
        out.push(n.checked_mul(ms).filter(|ms| *ms > 0).ok_or_else(bad)?);
    }
    if out.is_empty() || out.len() > 64 {
        return Err(format!(
            "messageDelayLevel: {} levels; between 1 and 64 are supported",
            out.len()
        ));
    }
    Ok(out)
}
