//! A bounded HTTP load: `concurrency` workers share one request budget and one deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What one load measured: the sorted latencies of the successes, the failures, the time.
pub struct Run {
    pub latencies: Vec<Duration>,
    pub errors: usize,
    pub elapsed: Duration,
}

impl Run {
    pub fn rps(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// The `p` quantile in ms.
    pub fn ms(&self, p: f64) -> f64 {
        super::percentile_ms(&self.latencies, p)
    }
}

/// A bounded load.
pub struct Load {
    pub client: reqwest::Client,
    pub headers: Vec<(&'static str, String)>,
    pub requests: usize,
    pub time_limit: Duration,
}

impl Load {
    /// A load of at most `requests` requests or `time_limit`, whichever ends first.
    pub fn new(client: reqwest::Client, requests: usize, time_limit: Duration) -> Load {
        Load {
            client,
            headers: Vec::new(),
            requests,
            time_limit,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Load {
        self.headers.push((name, value.into()));
        self
    }

    /// GETs `url(n)` for the n-th request with `concurrency` workers; a success is a 2xx.
    pub async fn run(
        &self,
        concurrency: usize,
        url: impl Fn(usize) -> String + Send + Sync + 'static,
    ) -> Run {
        let started = Instant::now();
        let counter = Arc::new(AtomicUsize::new(0));
        let url = Arc::new(url);
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let (client, headers) = (self.client.clone(), self.headers.clone());
                let (counter, url) = (counter.clone(), url.clone());
                let (requests, limit) = (self.requests, self.time_limit);
                tokio::spawn(async move {
                    let (mut latencies, mut errors) = (Vec::new(), 0);
                    loop {
                        let n = counter.fetch_add(1, Ordering::Relaxed);
                        if n >= requests || started.elapsed() >= limit {
                            break;
                        }
                        let mut request = client.get(url(n));
                        for (k, v) in &headers {
                            request = request.header(*k, v);
                        }
                        let t0 = Instant::now();
                        match request.send().await {
                            Ok(r) if r.status().is_success() => {
                                let _ = r.bytes().await;
                                latencies.push(t0.elapsed());
                            }
                            _ => errors += 1,
                        }
                    }
                    (latencies, errors)
                })
            })
            .collect();
        let (mut latencies, mut errors) = (Vec::new(), 0);
        for task in tasks {
            if let Ok((l, e)) = task.await {
                latencies.extend(l);
                errors += e;
            }
        }
        latencies.sort();
        Run {
            latencies,
            errors,
            elapsed: started.elapsed(),
        }
    }
}
