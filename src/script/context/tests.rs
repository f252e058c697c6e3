use super::*;

fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

fn vars() -> BTreeMap<String, String> {
    BTreeMap::from([("monthly_bill".to_string(), "200".to_string())])
}

#[test]
fn short_calls_keep_everything_in_order() {
    let mut c = Context::new(1000);
    c.push(Role::Agent, "Hello, is now a good time?");
    c.push(Role::Caller, "Yes.");
    let m = c.messages("You are Nova.", &vars(), "ask the bill", "Ask.", &words);
    let roles: Vec<&str> = m.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, vec!["system", "assistant", "user", "user"]);
    assert!(m[3].content.contains("monthly_bill=200"));
    assert!(m[3].content.contains("ask the bill"));
}

#[test]
fn long_calls_stay_within_budget_and_keep_system_vars_and_newest_turns() {
    let mut c = Context::new(60);
    for i in 0..40 {
        c.push(Role::Agent, &format!("agent line number {i} here"));
        c.push(Role::Caller, &format!("caller line number {i} here"));
    }
    let m = c.messages(
        "You are Nova from Sunrise Solar.",
        &vars(),
        "book",
        "Ask a time.",
        &words,
    );
    let total: usize = m.iter().map(|m| words(&m.content)).sum();
    assert!(total <= 60, "{total} words: {m:?}");
    assert_eq!(m[0].content, "You are Nova from Sunrise Solar.");
    assert!(m.last().unwrap().content.contains("monthly_bill=200"));
    // The newest turn is there verbatim, the oldest is not.
    assert!(m.iter().any(|x| x.content == "caller line number 39 here"));
    assert!(!m.iter().any(|x| x.content.contains("line number 0 ")));
    // Older caller words survive in the summary.
    assert!(
        m[1].role == "system" && m[1].content.starts_with("Earlier the caller said"),
        "{m:?}"
    );
}

#[test]
fn the_prefix_is_stable_between_evictions() {
    // KV reuse: adding a turn that fits must not change the earlier messages.
    let mut c = Context::new(80);
    for i in 0..10 {
        c.push(Role::Caller, &format!("caller {i}"));
    }
    let a = c.messages("sys", &vars(), "g", "i", &words);
    c.push(Role::Agent, "a reply");
    let b = c.messages("sys", &vars(), "g", "i", &words);
    assert_eq!(a[..a.len() - 1], b[..a.len() - 1]);
}

#[test]
fn a_budget_too_small_for_history_still_keeps_system_and_task() {
    let mut c = Context::new(5);
    c.push(
        Role::Caller,
        "a long line that cannot fit in such a tiny budget at all",
    );
    let m = c.messages("sys", &vars(), "g", "i", &words);
    assert_eq!(m.first().unwrap().content, "sys");
    assert!(m.last().unwrap().content.contains("monthly_bill"));
}

#[test]
fn an_open_conversation_ends_with_the_callers_words() {
    let mut c = Context::new(1000);
    c.push(Role::Agent, "Hello, I am an AI assistant.");
    c.push(Role::Caller, "What can you do?");
    let m = c.chat("You are Nova. Reply in two sentences.", &words);
    let roles: Vec<&str> = m.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["system", "assistant", "user"]);
    assert_eq!(m[2].content, "What can you do?");
}
