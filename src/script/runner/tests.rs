use std::sync::{Arc, Mutex};

use super::*;
use crate::engine::StopReason;

/// Records every request; answers generation with a fixed line.
struct RecordingLlm(Mutex<Vec<GenerateRequest>>);

impl LanguageModel for RecordingLlm {
    fn generate(&self, request: GenerateRequest) -> tokio::sync::mpsc::Receiver<LlmEvent> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let reply = if request.grammar.is_some() {
            r#"{"intent":"unclear"}"#
        } else {
            "Solar could cut that bill a lot."
        };
        self.0.lock().unwrap().push(request);
        tokio::spawn(async move {
            let _ = tx.send(LlmEvent::Token(reply.into())).await;
            let _ = tx
                .send(LlmEvent::Done {
                    prompt_evaluated: 0,
                    prompt_cached: 0,
                    generated: 1,
                    stop: StopReason::EndOfTurn,
                })
                .await;
        });
        rx
    }
    fn end_conversation(&self, _: &str) {}
}

#[tokio::test]
async fn generated_lines_see_history_within_the_token_budget() {
    let script = Arc::new(Script::from_toml("solar.toml", crate::script::EXAMPLE_SCRIPT).unwrap());
    let llm = Arc::new(RecordingLlm(Mutex::new(Vec::new())));
    let budget = 160;
    let mut runner = ScriptRunner::new(script, llm.clone(), "t").with_context_budget(budget);
    runner.event(Event::Started).await;
    runner.caller("Yes, go ahead.").await;
    runner.caller("About two hundred dollars a month.").await;
    let report = runner.caller("Yes, we own the house.").await;
    assert!(
        report
            .actions
            .iter()
            .any(|a| matches!(a, Action::Say { text, .. } if text.starts_with("Solar could"))),
        "{report:?}"
    );
    let requests = llm.0.lock().unwrap();
    let gen = requests
        .iter()
        .rfind(|r| r.grammar.is_none())
        .expect("a generated line");
    let m = &gen.messages;
    let used: usize = m.iter().map(|x| approx_tokens(&x.content)).sum();
    assert!(used <= budget, "{used} > {budget}: {m:?}");
    assert!(m[0].content.contains("phone assistant"), "{m:?}");
    let last = &m.last().unwrap().content;
    assert!(last.contains("monthly_bill=200"), "{last}");
    // The newest caller line is verbatim; the long disclosure at the start did not fit.
    assert!(
        m.iter().any(|x| x.content == "Yes, we own the house."),
        "{m:?}"
    );
    assert!(
        !m.iter().any(|x| x.content.contains("may be recorded")),
        "{m:?}"
    );
}

#[test]
fn preambles_and_quotes_are_dropped() {
    assert_eq!(
        super::strip_preamble("Here's a possible sentence: \"Solar can cut your bill.\""),
        "Solar can cut your bill."
    );
    assert_eq!(
        super::strip_preamble("Solar: the smart choice."),
        "Solar: the smart choice."
    );
}
