//! Agents made for a benchmark in the simulator, as an administrator would make them.

use serde_json::{Value, json};

/// Creates `n` agents (`{prefix}.agent{i}@example.com`, Portal-Agents, the demo password)
/// through the simulator's Management API at `sim`; returns their logins.
pub async fn create(sim: &str, prefix: &str, n: usize) -> Vec<String> {
    let client = reqwest::Client::new();
    let auth = format!("SSWS {}", okta_sim::DEMO_API_TOKEN);
    let groups: Vec<Value> = client
        .get(format!("{sim}/api/v1/groups?q=Portal-Agents"))
        .header("authorization", &auth)
        .send()
        .await
        .expect("the simulator answers")
        .json()
        .await
        .expect("a group list");
    let group = groups[0]["id"].as_str().expect("Portal-Agents").to_string();
    let mut logins = Vec::new();
    for i in 0..n {
        let login = format!("{prefix}.agent{i}@example.com");
        let body = json!({
            "profile": { "firstName": "Bench", "lastName": format!("Agent {i}"), "email": login, "login": login },
            "credentials": { "password": { "value": okta_sim::DEMO_PASSWORD } },
            "groupIds": [group],
        });
        let created = client
            .post(format!("{sim}/api/v1/users?activate=true"))
            .header("authorization", &auth)
            .json(&body)
            .send()
            .await
            .expect("the simulator answers");
        assert_eq!(
            created.status(),
            200,
            "{}",
            created.text().await.unwrap_or_default()
        );
        logins.push(login);
    }
    logins
}
