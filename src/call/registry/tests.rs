use super::*;

const SID: &str = "CA0123456789abcdef0123456789abcdef";

fn registered(inbound: bool) -> CallRegistry {
    let registry = CallRegistry::default();
    registry
        .register(CallMetadata {
            call_sid: SID.into(),
            from: Some("+14155550100".into()),
            to: Some("+18005550100".into()),
            inbound,
            ..Default::default()
        })
        .unwrap();
    registry
}

fn claims() -> BTreeMap<String, String> {
    BTreeMap::from([("to".to_string(), "+14155550999".to_string())])
}

#[test]
fn a_registered_call_starts_once_with_its_own_data() {
    let registry = registered(false);
    let metadata = registry.start(SID, "MZ1", "AC1", &claims()).unwrap();
    assert_eq!(
        metadata.to.as_deref(),
        Some("+18005550100"),
        "not the stream's claim"
    );
    assert_eq!(
        registry.start(SID, "MZ2", "AC1", &claims()),
        Err(StartRefused::AlreadyStreamed)
    );
    assert!(matches!(
        registry.register(CallMetadata {
            call_sid: SID.into(),
            ..Default::default()
        }),
        Err(RegisterRefused::AlreadyStreamed(_))
    ));
}

#[test]
fn an_unknown_call_is_refused_unless_the_development_switch_is_on() {
    let registry = CallRegistry::default();
    assert_eq!(
        registry.start(SID, "MZ1", "AC1", &claims()),
        Err(StartRefused::Unknown)
    );
    assert!(registry.get(SID).is_none(), "nothing recorded");
    let dev = CallRegistry::default().with_policy(StartPolicy {
        allow_unregistered: true,
        ..Default::default()
    });
    let metadata = dev.start(SID, "MZ1", "AC1", &claims()).unwrap();
    assert_eq!(metadata.to.as_deref(), Some("+14155550999"));
}

#[test]
fn another_accounts_stream_is_refused() {
    let registry = registered(false).with_policy(StartPolicy {
        account_sid: Some("ACours".into()),
        allow_unregistered: false,
    });
    assert_eq!(
        registry.start(SID, "MZ1", "ACtheirs", &claims()),
        Err(StartRefused::WrongAccount)
    );
    assert!(registry.start(SID, "MZ1", "ACours", &claims()).is_ok());
}

#[test]
fn the_other_partys_number_depends_on_who_rang() {
    let dialed = registered(false).get(SID).unwrap().metadata;
    assert_eq!(dialed.their_number(), Some("+18005550100"));
    let inbound = registered(true).get(SID).unwrap().metadata;
    assert_eq!(inbound.their_number(), Some("+14155550100"));
}

#[test]
fn finished_calls_stay_readable_then_go() {
    let registry = registered(false);
    registry.start(SID, "MZ1", "AC1", &claims()).unwrap();
    registry.finish(SID, "completed");
    assert_eq!(registry.get(SID).unwrap().status, "completed");
    // A sweep after the keep time drops it (the store has it).
    registry
        .lock()
        .sweep(Instant::now() + KEEP_FINISHED + Duration::from_secs(1));
    assert!(registry.get(SID).is_none());
}

#[test]
fn a_call_whose_stream_never_came_is_dropped() {
    let registry = registered(false);
    registry
        .lock()
        .sweep(Instant::now() + KEEP_UNSTREAMED + Duration::from_secs(1));
    assert!(registry.get(SID).is_none());
}
