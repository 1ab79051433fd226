//! Standing knobs of a running simulator, given on its command line or in [`SimOptions`]:
//! latency added to every Management API answer, rate limits per bucket (or none), and faults
//! at a rate. They exist so that anyone can reproduce the portal's benchmarks and failure
//! behaviour without writing code:
//!
//! ```text
//! okta-sim --latency-ms 80 --rate-limit 'GET /api/v1/users=600' --fault '/api/v1/logs:503:0.1'
//! ```
//!
//! [`SimOptions`]: crate::SimOptions

use std::time::Duration;

use crate::api::{Fault, FaultKind, Ops};

/// The simulator's standing knobs (all off by default: Okta's behaviour, no added latency).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Knobs {
    /// Milliseconds added to every Management API (`/api/v1`) response.
    #[arg(long = "latency-ms", value_name = "N", value_parser = parse_latency)]
    pub latency: Option<Duration>,
    /// A bucket's ceiling per minute, as `'GET /api/v1/users=600'` (the bucket names are
    /// Okta's: method and path template), `'*=N'` for every other bucket, or `off` for none.
    /// Repeatable.
    #[arg(long = "rate-limit", value_name = "BUCKET=N|off", value_parser = parse_rate_limit)]
    pub rate_limits: Vec<RateLimit>,
    /// A fault on requests whose path starts with PATH: `PATH:KIND:RATE`, KIND one of a 5xx
    /// status, `429`, `timeout` or `malformed`, RATE a fraction (`0.1`) or percentage (`10%`)
    /// of the matching requests, spread evenly (one in ten). Repeatable.
    #[arg(long = "fault", value_name = "PATH:KIND:RATE", value_parser = parse_fault)]
    pub faults: Vec<Fault>,
}

impl Knobs {
    /// The operational state a simulator starts with.
    pub(crate) fn into_ops(self) -> Ops {
        let mut ops = Ops {
            faults: self.faults,
            latency: self.latency,
            ..Ops::default()
        };
        for limit in self.rate_limits {
            match limit {
                RateLimit::Off => ops.rate_limits.off = true,
                RateLimit::Default(n) => ops.rate_limits.set_default(n),
                RateLimit::Bucket(bucket, n) => ops.rate_limits.set(&bucket, n),
            }
        }
        ops
    }
}

/// One `--rate-limit` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimit {
    /// No rate limit at all.
    Off,
    /// The ceiling of every bucket not named otherwise.
    Default(u32),
    /// The ceiling of one bucket (`"GET /api/v1/users"`).
    Bucket(String, u32),
}

fn parse_latency(value: &str) -> Result<Duration, String> {
    let ms: u64 = value
        .trim()
        .parse()
        .map_err(|_| format!("{value:?} is not a number of milliseconds"))?;
    if ms > 60_000 {
        return Err("at most 60000 ms".into());
    }
    Ok(Duration::from_millis(ms))
}

/// Parses `off`, `*=N` or `METHOD /api/v1/…=N`.
pub fn parse_rate_limit(value: &str) -> Result<RateLimit, String> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("off") {
        return Ok(RateLimit::Off);
    }
    let (bucket, limit) = value.rsplit_once('=').ok_or_else(|| {
        format!("{value:?}: expected BUCKET=N (e.g. 'GET /api/v1/users=600') or off")
    })?;
    let limit: u32 = limit
        .trim()
        .parse()
        .map_err(|_| format!("{value:?}: {limit:?} is not a whole number of requests"))?;
    let bucket = bucket.trim();
    if bucket == "*" {
        return Ok(RateLimit::Default(limit));
    }
    let known = ["GET", "POST", "PUT", "DELETE"];
    match bucket.split_once(' ') {
        Some((method, path)) if known.contains(&method) && path.starts_with("/api/v1") => {
            Ok(RateLimit::Bucket(format!("{method} {path}"), limit))
        }
        _ => Err(format!(
            "{bucket:?} is not a bucket: write the method and path template, e.g. 'GET /api/v1/users/{{id}}'"
        )),
    }
}

/// Parses `PATH:KIND:RATE`.
pub fn parse_fault(value: &str) -> Result<Fault, String> {
    let mut parts = value.rsplitn(3, ':');
    let (rate, kind, path) = match (parts.next(), parts.next(), parts.next()) {
        (Some(rate), Some(kind), Some(path)) => (rate, kind, path),
        _ => {
            return Err(format!(
                "{value:?}: expected PATH:KIND:RATE, e.g. /api/v1/users:503:0.1"
            ));
        }
    };
    if !path.starts_with('/') {
        return Err(format!("{path:?}: the path must start with /"));
    }
    let kind = match kind.trim().to_ascii_lowercase().as_str() {
        "timeout" => FaultKind::Hang,
        "malformed" => FaultKind::MalformedBody,
        "429" => FaultKind::RateLimited,
        status => match status.parse::<u16>() {
            Ok(n @ 500..=599) => FaultKind::Status(n),
            _ => {
                return Err(format!(
                    "{kind:?}: the kind is a 5xx status, 429, timeout or malformed"
                ));
            }
        },
    };
    let every = every_for(rate.trim())?;
    Ok(Fault::new("*", path, kind).every(every).times(usize::MAX))
}

/// One request in how many, for a rate written as `0.1` or `10%`.
fn every_for(rate: &str) -> Result<usize, String> {
    let fraction = match rate.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => rate.parse::<f64>(),
    }
    .map_err(|_| format!("{rate:?}: the rate is a fraction (0.1) or a percentage (10%)"))?;
    if !(fraction > 0.0 && fraction <= 1.0) {
        return Err(format!(
            "{rate:?}: the rate must be above 0 and at most 1 (100%)"
        ));
    }
    Ok((1.0 / fraction).round().max(1.0) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_parse_buckets_default_and_off() {
        assert_eq!(parse_rate_limit("off"), Ok(RateLimit::Off));
        assert_eq!(parse_rate_limit("*=50"), Ok(RateLimit::Default(50)));
        assert_eq!(
            parse_rate_limit("GET /api/v1/users/{id}=1200"),
            Ok(RateLimit::Bucket("GET /api/v1/users/{id}".into(), 1200))
        );
        assert!(parse_rate_limit("GET /api/v1/users").is_err());
        assert!(parse_rate_limit("FETCH /api/v1/users=1").is_err());
        assert!(parse_rate_limit("GET /other=1").is_err());
        assert!(parse_rate_limit("GET /api/v1/users=-3").is_err());
    }

    #[test]
    fn faults_parse_kinds_and_rates() {
        let fault = parse_fault("/api/v1/users:503:0.25").unwrap();
        assert_eq!(fault.path_prefix, "/api/v1/users");
        assert_eq!(fault.kind, FaultKind::Status(503));
        assert_eq!(fault.every, 4);
        assert_eq!(
            parse_fault("/api/v1/logs:timeout:100%").unwrap().kind,
            FaultKind::Hang
        );
        assert_eq!(parse_fault("/a:malformed:1").unwrap().every, 1);
        assert_eq!(
            parse_fault("/a:429:10%").unwrap().kind,
            FaultKind::RateLimited
        );
        assert!(parse_fault("/a:404:0.5").is_err());
        assert!(parse_fault("/a:500:0").is_err());
        assert!(parse_fault("/a:500:2").is_err());
        assert!(parse_fault("a:500:0.5").is_err());
        assert!(parse_fault("/a:500").is_err());
    }

    #[test]
    fn latency_is_bounded() {
        assert_eq!(parse_latency("80"), Ok(Duration::from_millis(80)));
        assert!(parse_latency("-1").is_err());
        assert!(parse_latency("600000").is_err());
    }
}
