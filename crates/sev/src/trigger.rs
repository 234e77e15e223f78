//! `sev trigger`: inject an event into a running simulator through its control API.

use anyhow::Context;
use serde_json::{Value, json};

use crate::cli::TriggerArgs;

pub async fn run(args: TriggerArgs) -> anyhow::Result<()> {
    let base =
        url::Url::parse(&args.sim).with_context(|| format!("--sim {:?} is not a URL", args.sim))?;
    let body = json!({
        "type": args.kind, "broadcaster": args.broadcaster, "user": args.user, "amount": args.amount,
        "tier": args.tier, "title": args.title, "category": args.category, "message": args.message,
        "notice_type": args.notice_type, "anonymous": args.anonymous,
    });
    let res = reqwest::Client::new()
        .post(base.join("/_sim/trigger")?)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("no simulator answers at {base}"))?;
    let status = res.status();
    let answer: Value = res
        .json()
        .await
        .context("the simulator's answer is not JSON")?;
    if !status.is_success() {
        anyhow::bail!(
            "the simulator refused: {}",
            answer["message"].as_str().unwrap_or("unknown error")
        );
    }
    println!("{}", serde_json::to_string_pretty(&answer["event"])?);
    let n = answer["message_ids"].as_array().map_or(0, Vec::len);
    println!("delivered to {n} subscription(s)");
    Ok(())
}
