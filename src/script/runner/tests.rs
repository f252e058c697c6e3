use std::sync::{Arc, Mutex};

use chrono::TimeZone;

use super::*;
use crate::engine::StopReason;

/// Records every request; answers generation with fixed lines and classification with
/// `label` (`unclear` unless told), or (with `hang`) never answers classification until
/// cancelled.
struct FakeLlm {
    requests: Mutex<Vec<GenerateRequest>>,
    hang: bool,
    label: &'static str,
}

impl FakeLlm {
    fn new(hang: bool) -> Arc<Self> {
        Arc::new(Self {
            requests: Mutex::new(Vec::new()),
            hang,
            label: "unclear",
        })
    }

    fn labelling(label: &'static str) -> Arc<Self> {
        Arc::new(Self {
            requests: Mutex::new(Vec::new()),
            hang: false,
            label,
        })
    }

    fn classifications(&self) -> usize {
        let r = self.requests.lock().unwrap();
        r.iter().filter(|r| r.grammar.is_some()).count()
    }
}

impl LanguageModel for FakeLlm {
    fn generate(&self, request: GenerateRequest) -> tokio::sync::mpsc::Receiver<LlmEvent> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let classify = request.grammar.is_some();
        let reply = if classify {
            format!(r#"{{"intent":"{}"}}"#, self.label)
        } else {
            "Solar could cut that bill a lot. It is cheap. Really.".to_string()
        };
        let (hang, cancel) = (self.hang && classify, request.cancel.clone());
        self.requests.lock().unwrap().push(request);
        tokio::spawn(async move {
            if hang {
                cancel.cancelled().await;
                return;
            }
            let _ = tx.send(LlmEvent::Token(reply)).await;
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

fn solar() -> Arc<Script> {
    Arc::new(Script::from_toml("solar.toml", crate::script::EXAMPLE_SCRIPT).unwrap())
}

/// Wednesday 2026-12-02 09:30 in New York.
fn morning() -> CallContext {
    let now = chrono_tz::America::New_York
        .with_ymd_and_hms(2026, 12, 2, 9, 30, 0)
        .unwrap();
    CallContext::default().at(now.with_timezone(&Utc))
}

fn said(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Say { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn generated_lines_see_history_within_the_token_budget() {
    let llm = FakeLlm::new(false);
    let budget = 160;
    let mut runner = ScriptRunner::new(solar(), llm.clone(), "t", CallContext::default())
        .with_context_budget(budget);
    let plan = runner.event(Event::Started).await;
    runner.realize(plan).await;
    for line in ["Yes, go ahead.", "About two hundred dollars a month."] {
        let plan = runner.caller(line).await;
        runner.realize(plan).await;
    }
    let plan = runner.caller("Yes, we own the house.").await;
    assert!(
        plan.actions
            .iter()
            .any(|a| matches!(a, Action::Generate { sentences: 1, .. })),
        "the agent streams generated lines: {plan:?}"
    );
    let plan = runner.realize(plan).await;
    assert_eq!(
        said(&plan)[0],
        "Solar could cut that bill a lot.",
        "one sentence"
    );
    let requests = llm.requests.lock().unwrap();
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

#[tokio::test]
async fn lead_variables_fill_the_first_line_and_times_are_spoken() {
    let toml = crate::script::EXAMPLE_SCRIPT.replace(
        "opening = \"Hi, this is {persona}",
        "opening = \"Hi {name}, this is {persona}",
    );
    let script = Arc::new(Script::from_toml("solar.toml", &toml).unwrap());
    let mut ctx = morning();
    ctx.vars = BTreeMap::from([
        ("name".to_string(), "Sam".to_string()),
        ("city".to_string(), "".to_string()),
    ]);
    let mut runner = ScriptRunner::new(script.clone(), FakeLlm::new(false), "t", ctx);
    let plan = runner.event(Event::Started).await;
    assert!(
        said(&plan)[0].starts_with("Hi Sam, this is Nova"),
        "{plan:?}"
    );
    assert!(!runner.vars().contains_key("city"), "empty values dropped");
    // Without a name the line still reads well.
    let mut runner = ScriptRunner::new(script, FakeLlm::new(false), "t", morning());
    let plan = runner.event(Event::Started).await;
    assert!(said(&plan)[0].starts_with("Hi, this is Nova"), "{plan:?}");
    runner.goto("book_time");
    let plan = runner.caller("Tomorrow at 10 works.").await;
    assert_eq!(runner.vars()["callback_time"], "2026-12-03T10:00:00-05:00");
    assert!(
        said(&plan)[0].starts_with("Perfect, you are booked for Thursday, December 3 at 10 a.m."),
        "{plan:?}"
    );
    assert_eq!(runner.outcome(), Some(Outcome::Interested));
    let m = runner.generation("Say goodbye.", "End.");
    assert!(
        m.last()
            .unwrap()
            .content
            .contains("callback_time=Thursday, December 3 at 10 a.m."),
        "{m:?}"
    );
}

#[tokio::test]
async fn a_dropped_turn_changes_nothing_and_cancels_the_model() {
    let llm = FakeLlm::new(true);
    let mut runner = ScriptRunner::new(solar(), llm.clone(), "t", morning());
    runner.event(Event::Started).await;
    let before = runner.snapshot();
    let turn = runner.caller("Hmm, it varies a lot by season");
    let timed_out = tokio::time::timeout(std::time::Duration::from_millis(50), turn).await;
    assert!(timed_out.is_err(), "the fake model never answers");
    assert_eq!(runner.state(), &before.state);
    assert_eq!(runner.context.len(), before.context.len());
    let requests = llm.requests.lock().unwrap();
    assert!(requests.last().unwrap().cancel.is_cancelled());
}

#[tokio::test]
async fn words_the_ear_was_unsure_of_are_read_by_the_rules_alone() {
    // A model that calls anything a yes, as the tiny one did with "That's interested." (what
    // Whisper tiny heard of "Not interested." in the corpus, at confidence 0.36).
    let llm = FakeLlm::labelling("yes");
    let mut runner = ScriptRunner::new(solar(), llm.clone(), "t", morning());
    runner.event(Event::Started).await;
    for answer in ["Yes, go ahead.", "About 200 dollars.", "Yes, we own it."] {
        runner.caller(answer).await;
    }
    assert_eq!(runner.state().node, "pitch");
    let at_pitch = runner.snapshot();

    // Heard with confidence, the model's guess books the call.
    let plan = runner.caller("That's interested.").await;
    let c = plan.classified.as_ref().unwrap();
    assert_eq!((c.intent.as_str(), c.by), ("yes", "llm"));
    assert_eq!(runner.state().node, "book_time");
    assert_eq!(llm.classifications(), 1);

    // Unsure: not guessed at. The call stays, the caller is asked again, the model is not.
    runner.restore(at_pitch.clone());
    let plan = runner.caller_unsure("That's interested.").await;
    let c = plan.classified.as_ref().unwrap();
    assert_eq!((c.intent.as_str(), c.by), ("unclear", "ear"));
    assert_eq!(runner.state().node, "pitch");
    assert!(said(&plan)[0].starts_with("Sorry"), "{:?}", said(&plan));
    assert_eq!(llm.classifications(), 1);

    // A question known only by its shape is not answered either ("How is how a good time?"
    // for "Now is not a good time.", 0.48 in the corpus).
    let heard = "How is how a good time?";
    runner.restore(at_pitch.clone());
    let c = runner.caller(heard).await.classified.unwrap();
    assert_eq!((c.intent.as_str(), c.by), ("unknown_question", "rule"));
    runner.restore(at_pitch.clone());
    let c = runner.caller_unsure(heard).await.classified.unwrap();
    assert_eq!((c.intent.as_str(), c.by), ("unclear", "ear"));

    // What the rules read still counts, however unsure the ear: a decline, an opt-out.
    runner.restore(at_pitch.clone());
    let plan = runner
        .caller_unsure("No thanks, I am not interested.")
        .await;
    let c = plan.classified.as_ref().unwrap();
    assert_eq!((c.intent.as_str(), c.by), ("no", "rule"));
    assert_eq!(
        c.captured.get("interested").map(String::as_str),
        Some("false")
    );
    runner.restore(at_pitch);
    let plan = runner.caller_unsure("Stop calling me.").await;
    let c = plan.classified.as_ref().unwrap();
    assert_eq!((c.intent.as_str(), c.by), ("opt_out", "rule"));
    assert_eq!(llm.classifications(), 1);
}

#[tokio::test]
async fn a_turn_can_be_undone_and_the_question_asked_again() {
    let mut runner = ScriptRunner::new(solar(), FakeLlm::new(false), "t", morning());
    runner.event(Event::Started).await;
    let s = runner.snapshot();
    let plan = runner.caller("Yes, go ahead.").await;
    assert_eq!(
        (plan.node.as_str(), runner.state().node.as_str()),
        ("intro", "bill")
    );
    runner.restore(s);
    assert_eq!(runner.state().node, "intro");
    assert_eq!(runner.context.len(), 0);
    let again = runner.reask();
    assert_eq!(
        again,
        [Action::Say {
            text: "Is now a good time for a quick question about your electricity bill?".into(),
            interruptible: true
        }]
    );
    assert_eq!(runner.state().node, "intro");
    // A question never moves the call.
    let plan = runner
        .caller("Am I talking to a real person or a robot?")
        .await;
    let c = plan.classified.as_ref().unwrap();
    assert_eq!((c.intent.as_str(), c.by), ("are_you_a_robot", "rule"));
    assert_eq!(runner.state().node, "intro");
    // Heard words go into the context.
    runner.said("Hello there.");
    assert_eq!(runner.context.len(), 2);
}

#[tokio::test]
async fn an_open_conversation_answers_the_callers_words_within_its_sentences() {
    let script = Script::open_conversation(&crate::script::format::OpenConversation {
        greeting: "Hi, an AI assistant here.".into(),
        system_prompt: "You are Sam from Acme.".into(),
        opt_out_digit: Some('9'),
        opt_out_message: "Removed. Goodbye.".into(),
        max_reply_sentences: 2,
    })
    .unwrap();
    let llm = FakeLlm::new(false);
    let mut ctx = CallContext::default();
    ctx.vars.insert("name".into(), "Kim".into());
    let mut runner = ScriptRunner::new(Arc::new(script), llm.clone(), "t", ctx);
    let plan = runner.event(Event::Started).await;
    runner.realize(plan).await;
    let plan = runner.caller("What do you sell?").await;
    let c = plan.classified.clone().unwrap();
    assert_eq!((c.intent.as_str(), c.by), ("open", "rule"));
    let plan = runner.realize(plan).await;
    assert_eq!(
        said(&plan),
        ["Solar could cut that bill a lot. It is cheap."]
    );
    let requests = llm.requests.lock().unwrap();
    let m = &requests.last().unwrap().messages;
    assert_eq!(
        m[0].content,
        "You are Sam from Acme. Answer in one or two short spoken sentences. Known about the caller: name=Kim."
    );
    assert_eq!(m[1].content, "Hi, an AI assistant here.");
    assert_eq!(m.last().unwrap().content, "What do you sell?");
    assert_eq!(
        requests.last().unwrap().grammar,
        None,
        "no classification call"
    );
    assert_eq!(requests.len(), 1);
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
    assert_eq!(super::first_sentences("One. Two. Three.", 2), "One. Two.");
}

/// A lead called before: its answers are variables (the bill is not asked again, the pitch
/// uses it) and its memory is in the generated line's prompt, within the budget.
#[tokio::test]
async fn a_second_call_starts_from_the_leads_memory() {
    let llm = FakeLlm::new(false);
    let budget = 200;
    let ctx = CallContext {
        vars: BTreeMap::from([("monthly_bill".to_string(), "200".to_string())]),
        memory: Some(
            "Last call 2026-12-01: asked to be called back; monthly_bill 200.".to_string(),
        ),
        callback: true,
        ..morning()
    };
    let mut runner = ScriptRunner::new(solar(), llm.clone(), "t", ctx).with_context_budget(budget);
    let plan = runner.event(Event::Started).await;
    let opening = said(&runner.realize(plan).await);
    assert!(
        opening[1].starts_with("You asked us to call back"),
        "{opening:?}"
    );
    let plan = runner.caller("Yes, go ahead.").await;
    assert_eq!(
        said(&runner.realize(plan).await),
        ["And do you own your home?"]
    );
    let plan = runner.caller("Yes, we own the house.").await;
    runner.realize(plan).await;
    let requests = llm.requests.lock().unwrap();
    let gen = requests
        .iter()
        .rfind(|r| r.grammar.is_none())
        .expect("a generated line");
    let m = &gen.messages;
    assert!(
        m[0].content
            .contains("From earlier calls with this person: Last call 2026-12-01"),
        "{m:?}"
    );
    let used: usize = m.iter().map(|x| approx_tokens(&x.content)).sum();
    assert!(used <= budget, "{used} > {budget}: {m:?}");
}

#[test]
fn a_long_memory_is_cut_to_its_share_of_the_budget() {
    let long = "monthly_bill 200; ".repeat(100);
    let line = memory_line(&long, 40);
    assert!(approx_tokens(&line) <= 40, "{line}");
    assert!(line.ends_with("..."));
    assert_eq!(
        memory_line("short.", 40),
        "From earlier calls with this person: short."
    );
}

#[tokio::test]
async fn words_foreseen_in_a_pause_are_classified_once_and_only_for_that_turn() {
    let llm = FakeLlm::new(false);
    let classifications = |llm: &FakeLlm| {
        let r = llm.requests.lock().unwrap();
        r.iter().filter(|r| r.grammar.is_some()).count()
    };
    let mut runner = ScriptRunner::new(solar(), llm.clone(), "t", morning());
    runner.event(Event::Started).await;
    let before = runner.snapshot();
    runner.foresee("Yes, go ahead.").await;
    assert_eq!(classifications(&llm), 0, "the rules know these words");
    runner.foresee("Hmm, it varies a lot by season").await;
    runner.foresee("Hmm, it varies a lot by season").await;
    assert_eq!(classifications(&llm), 1, "asked once for the same words");
    assert_eq!(runner.state(), &before.state, "foreseeing changes nothing");
    assert_eq!(runner.context.len(), 0);
    let plan = runner.caller("Hmm, it varies a lot by season").await;
    assert_eq!(plan.classified.as_ref().unwrap().by, "llm");
    assert_eq!(
        classifications(&llm),
        1,
        "the turn used the answer foreseen"
    );
    // Other words at the end of the turn: the model is asked about them.
    runner.restore(before);
    runner.foresee("Hmm, it varies").await;
    runner.caller("Hmm, it varies a lot by season").await;
    assert_eq!(classifications(&llm), 3);
}

#[tokio::test]
async fn a_nodes_classification_prompt_is_warmed_all_but_the_callers_words() {
    let llm = FakeLlm::new(false);
    let mut runner = ScriptRunner::new(solar(), llm.clone(), "t", morning());
    runner.event(Event::Started).await;
    runner
        .warm_classifier()
        .expect("the intro has intents")
        .await;
    runner.caller("Hmm, it varies a lot by season").await;
    let requests: Vec<GenerateRequest> = llm.requests.lock().unwrap().drain(..).collect();
    let [warm, turn] = &requests[..] else {
        panic!("{} requests", requests.len());
    };
    // The warm-up evaluates the prompt and generates nothing, in the classifier's cache.
    assert_eq!(warm.max_tokens, 0);
    assert_eq!(warm.conversation_id, turn.conversation_id);
    assert!(turn.grammar.is_some());
    // The turn's prompt differs from it only in the caller's words.
    assert_eq!(warm.messages[0].content, turn.messages[0].content);
    let (w, t) = (&warm.messages[1].content, &turn.messages[1].content);
    assert_eq!(
        t.strip_suffix("Hmm, it varies a lot by season"),
        Some(w.as_str())
    );
    drop(requests);
    // A call that has ended has nothing to classify.
    runner.caller("Never call me again.").await;
    assert!(runner.outcome().is_some());
    assert!(runner.warm_classifier().is_none());
}

#[tokio::test]
async fn the_ear_hears_the_nodes_answers_then_times_then_questions() {
    let mut runner = ScriptRunner::new(solar(), FakeLlm::new(false), "t", morning());
    runner.event(Event::Started).await;
    let hint = runner.ear_hint().unwrap();
    let (answers, times, questions) = (
        hint.find("Yes. No.").unwrap(),
        hint.find("Monday at 9 a.m.").unwrap(),
        hint.find("Are you a robot?").unwrap(),
    );
    assert!(answers < times && times < questions, "{hint}");
    // The bill question: its amounts, and a time said ahead of the callback question.
    runner.caller("Yes, go ahead.").await;
    let hint = runner.ear_hint().unwrap();
    assert!(hint.starts_with("About 150 dollars."), "{hint}");
    assert!(hint.contains("The day after tomorrow at 3 p.m."), "{hint}");
}

#[tokio::test]
async fn a_doubtful_turn_is_heard_again_against_the_nodes_answers_a_decline_an_opt_out_and_the_questions(
) {
    let mut runner = ScriptRunner::new(solar(), FakeLlm::new(false), "t", morning());
    runner.event(Event::Started).await;
    let intro = runner.ear_choices();
    for choice in [
        "Yes.",
        "Not now.",
        "Not interested.",
        "Stop calling me.",
        "Who is this?",
    ] {
        assert!(intro.iter().any(|c| c == choice), "{choice}: {intro:?}");
    }
    // At the bill question no amount is a choice; the decline is there once.
    runner.caller("Yes, go ahead.").await;
    let bill = runner.ear_choices();
    assert!(bill.iter().all(|c| !c.contains("150")), "{bill:?}");
    assert_eq!(bill.iter().filter(|c| *c == "Not interested.").count(), 1);
    assert!(bill.contains(&"I don't know.".to_string()), "{bill:?}");
}
