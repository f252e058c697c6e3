use super::*;

#[test]
fn defaults_validate() {
    let c = RawConfig::default().validate(Secrets::default()).unwrap();
    assert_eq!(c.models.llm, PathBuf::from("models/llm.gguf"));
    assert_eq!(c.models.tts_config, PathBuf::from("models/tts.onnx.json"));
    assert_eq!(c.turn.endpoint_silence_ms, 800);
    assert_eq!(c.conversation.script.opt_out_digit, Some('9'));
    assert!(c.conversation.script.nodes[&c.conversation.script.start].open);
    assert!(!c.allow_unsigned_webhooks);
    // The admission limit follows the box: the measured capacity per core.
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(c.max_calls, CALLS_PER_CORE * cores);
    assert!(c.conversation.prepare_lines);
}

#[test]
fn unknown_keys_and_bad_values_are_named() {
    let err = RawConfig::from_toml("[turn]\nendpoint_silense_ms = 3").unwrap_err();
    assert!(err.contains("endpoint_silense_ms"), "{err}");
    let raw = RawConfig::from_toml("[turn]\nendpoint_silence_ms = 3").unwrap();
    let err = raw.validate(Secrets::default()).err().unwrap().to_string();
    assert!(err.contains("turn.endpoint_silence_ms"), "{err}");
    let raw = RawConfig::from_toml("[server]\nlisten = \"nope\"").unwrap();
    assert!(raw.validate(Secrets::default()).is_err());
    let raw = RawConfig::from_toml("[llm]\nthreads = 0").unwrap();
    assert!(raw.validate(Secrets::default()).is_err());
    for (toml, key) in [
        ("[stt]\nqueue_limit = 0", "stt.queue_limit"),
        ("[stt]\nbeam = 9", "stt.beam"),
        ("[llm]\nmax_wait_ms = 5", "llm.max_wait_ms"),
        ("[tts]\nqueue_limit = 100000", "tts.queue_limit"),
        // A hold the dead-air guard would talk over.
        ("[turn]\nunclear_hold_ms = 3000", "turn.unclear_hold_ms"),
        ("[turn]\nmin_confidence = 1.5", "turn.min_confidence"),
        ("[tts]\ntakes = 0", "tts.takes"),
    ] {
        let raw = RawConfig::from_toml(toml).unwrap();
        let err = raw.validate(Secrets::default()).err().unwrap().to_string();
        assert!(err.contains(key), "{err}");
    }
    let raw = RawConfig::from_toml("[stt]\nqueue_limit = 8\nmax_wait_ms = 2500").unwrap();
    let q = raw.validate(Secrets::default()).unwrap().stt.queue;
    assert_eq!((q.max_jobs, q.max_wait.as_millis()), (8, 2500));
    let beam = |toml: &str| {
        let raw = RawConfig::from_toml(toml).unwrap();
        raw.validate(Secrets::default()).unwrap().stt.beam
    };
    assert_eq!(
        (beam(""), beam("[stt]\nbeam = 5")),
        (0, 5),
        "greedy unless set"
    );
    let takes = |raw: RawConfig| raw.validate(Secrets::default()).unwrap().fixed_line_takes;
    assert_eq!(takes(RawConfig::from_toml("").unwrap()), 3);
    assert_eq!(
        takes(RawConfig::from_toml("").unwrap().single_threaded()),
        1,
        "tests do not proof"
    );
}

#[test]
fn scripts_load_and_bad_ones_are_reported() {
    let raw = RawConfig::from_toml("[conversation]\nscript = \"example\"").unwrap();
    let c = raw.validate(Secrets::default()).unwrap();
    assert_eq!(c.conversation.script.start, "intro");
    let raw = RawConfig::from_toml("[conversation]\nscript = \"/nonexistent.toml\"").unwrap();
    let err = raw.validate(Secrets::default()).err().unwrap().to_string();
    assert!(
        err.contains("conversation.script") && err.contains("/nonexistent.toml"),
        "{err}"
    );
}

#[test]
fn without_a_script_calls_follow_the_open_conversation() {
    let raw = RawConfig::from_toml(
        "[conversation]\ngreeting = \"Hi, Sam here, an AI assistant.\"\nopt_out_digit = \"\"\nmax_reply_sentences = 3",
    )
    .unwrap();
    let c = raw.validate(Secrets::default()).unwrap();
    let s = &c.conversation.script;
    assert_eq!(s.opening, "Hi, Sam here, an AI assistant.");
    assert_eq!(s.opt_out_digit, None);
    assert_eq!(s.nodes[&s.start].sentences, 3);
    let raw = RawConfig::from_toml("[conversation]\ngreeting = \"Hi, Sam here.\"").unwrap();
    let err = raw.validate(Secrets::default()).err().unwrap().to_string();
    assert!(
        err.contains("conversation.greeting") && err.contains("AI"),
        "{err}"
    );
}

#[test]
fn secrets_are_redacted_in_debug() {
    let s = Secrets {
        api_token: Some("hunter2".into()),
        twilio_auth_token: None,
        ..Default::default()
    };
    let shown = format!("{s:?}");
    assert!(!shown.contains("hunter2"));
    assert!(shown.contains("<set>"));
}

#[test]
fn tts_config_follows_custom_model_path() {
    let raw = RawConfig::from_toml("[models]\ntts = \"/v/voice.onnx\"").unwrap();
    let c = raw.validate(Secrets::default()).unwrap();
    assert_eq!(c.models.tts_config, PathBuf::from("/v/voice.onnx.json"));
}

#[test]
fn dialer_clocks_default_and_are_range_checked() {
    let c = RawConfig::default().validate(Secrets::default()).unwrap();
    assert_eq!(c.dialer.lease, std::time::Duration::from_secs(60));
    assert_eq!(c.dialer.settle_unknown, std::time::Duration::from_secs(120));
    assert_eq!(c.dialer.reconcile_every, std::time::Duration::from_secs(15));
    for (toml, key) in [
        ("[dialer]\nlease_s = 2", "dialer.lease_s"),
        ("[dialer]\nlease_s = 3601", "dialer.lease_s"),
        ("[dialer]\nsettle_unknown_s = 0", "dialer.settle_unknown_s"),
        ("[dialer]\nreconcile_s = 3601", "dialer.reconcile_s"),
    ] {
        let raw = RawConfig::from_toml(toml).unwrap();
        let err = raw.validate(Secrets::default()).err().unwrap().to_string();
        assert!(err.contains(key), "{toml}: {err}");
    }
    let raw = RawConfig::from_toml("[dialer]\nlease_s = 3\nsettle_unknown_s = 86400").unwrap();
    let c = raw.validate(Secrets::default()).unwrap();
    assert_eq!(c.dialer.lease, std::time::Duration::from_secs(3));
}

#[test]
fn unregistered_media_is_for_loopback_only() {
    let on = |listen: &str| {
        RawConfig::from_toml(&format!(
            "[server]\nlisten = \"{listen}\"\nallow_unregistered_media = true"
        ))
        .unwrap()
        .validate(Secrets::default())
    };
    assert!(on("127.0.0.1:8080").unwrap().allow_unregistered_media);
    assert!(on("[::1]:8080").is_ok());
    let err = on("0.0.0.0:8080").err().unwrap().to_string();
    assert!(err.contains("server.allow_unregistered_media"), "{err}");
    assert!(on("192.168.1.5:8080").is_err());
    assert!(
        !RawConfig::default()
            .validate(Secrets::default())
            .unwrap()
            .allow_unregistered_media
    );
}

#[test]
fn crm_delivery_settings_are_checked_and_the_secret_is_redacted() {
    let c = RawConfig::default().validate(Secrets::default()).unwrap();
    assert_eq!(c.crm.retry, crate::crm::webhook::RetrySchedule::default());
    let raw =
        RawConfig::from_toml("[crm]\nretry_base_ms = 50\nretry_cap_s = 2\npoll_ms = 20").unwrap();
    let c = raw.validate(Secrets::default()).unwrap();
    assert_eq!(c.crm.retry.base.as_millis(), 50);
    assert_eq!(c.crm.retry.cap.as_secs(), 2);
    for (toml, key) in [
        ("[crm]\nretry_base_ms = 1", "crm.retry_base_ms"),
        ("[crm]\nmax_attempts = 0", "crm.max_attempts"),
        ("[crm]\ntimeout_s = 0", "crm.timeout_s"),
        ("[crm]\npoll_ms = 0", "crm.poll_ms"),
    ] {
        let raw = RawConfig::from_toml(toml).unwrap();
        let err = raw.validate(Secrets::default()).err().unwrap().to_string();
        assert!(err.contains(key), "{err}");
    }
    let secrets = Secrets {
        crm_secret: Some("whsec_do_not_print".into()),
        ..Default::default()
    };
    let shown = format!("{secrets:?}");
    assert!(!shown.contains("whsec_do_not_print"), "{shown}");
    assert!(shown.contains("crm_secret"), "{shown}");
}

#[test]
fn recordings_go_beside_the_sqlite_file_unless_configured() {
    let dir = |toml: &str| {
        RawConfig::from_toml(toml)
            .unwrap()
            .validate(Secrets::default())
            .unwrap()
            .recordings_dir
    };
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(dir(""), cwd.join("recordings"));
    assert_eq!(
        dir("[store]\nurl = \"sqlite:///var/lib/tm/calls.db?mode=rwc\""),
        Path::new("/var/lib/tm/recordings")
    );
    assert_eq!(
        dir("[store]\nurl = \"sqlite://data/tm.db\""),
        cwd.join("data/recordings")
    );
    assert_eq!(
        dir("[store]\nurl = \"sqlite::memory:\""),
        cwd.join("recordings")
    );
    assert_eq!(
        dir("[store]\nurl = \"postgres://db/tm\""),
        cwd.join("recordings")
    );
    assert_eq!(
        dir("[recordings]\ndir = \"/srv/rec\""),
        Path::new("/srv/rec")
    );
    let err = RawConfig::from_toml("[recordings]\ndir = \"\"")
        .unwrap()
        .validate(Secrets::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("recordings.dir"), "{err}");
    assert!(RawConfig::from_toml("[recordings]\nfolder = \"x\"").is_err());
}
