//! Configuration from TOML: the shapes the ha-lb binary will read, and clear rejections.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use healthcheck::{
    CheckConfig, ConfigError, ExecConfig, HttpConfig, MonitorConfig, State, StatusMatch, TcpConfig,
};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Target {
    check: CheckConfig,
    #[serde(default)]
    monitor: MonitorConfig,
}

fn parse(text: &str) -> Result<Target, toml::de::Error> {
    toml::from_str(text)
}

#[test]
fn kube_apiserver_readyz() {
    let t = parse(
        r#"
        [check]
        type = "http"
        url = "https://127.0.0.1:6443/readyz"
        expect_status = 200
        expect_body = "ok"
        tls = { ca_file = "/etc/kubernetes/pki/ca.crt", server_name = "kubernetes", client_cert = "/etc/kubernetes/pki/apiserver-kubelet-client.crt", client_key = "/etc/kubernetes/pki/apiserver-kubelet-client.key" }

        [monitor]
        interval = "2s"
        timeout = "1500ms"
        rise = 2
        fall = 3
        initial = "down"
        fastinter = "500ms"
        downinter = "5s"
        jitter = 0.1
        "#,
    )
    .unwrap();
    let CheckConfig::Http(http) = &t.check else {
        panic!("{:?}", t.check)
    };
    assert_eq!(http.method, "GET");
    assert_eq!(http.expect_status, StatusMatch::Exact(200));
    assert_eq!(http.tls.server_name.as_deref(), Some("kubernetes"));
    assert_eq!(t.monitor.timeout, Duration::from_millis(1500));
    assert_eq!(t.monitor.initial, State::Down);
    assert_eq!(t.monitor.fastinter(), Duration::from_millis(500));
    assert_eq!(t.monitor.jitter, 0.1);
    t.monitor.validate().unwrap();
    // The files don't exist here: building names the missing one.
    let err = t.check.build().unwrap_err();
    assert!(
        err.to_string().contains("/etc/kubernetes/pki/ca.crt"),
        "{err}"
    );
}

#[test]
fn each_check_type_parses_and_defaults_apply() {
    let t = parse("check = { type = \"tcp\", address = \"127.0.0.1:6443\" }").unwrap();
    assert_eq!(
        t.check,
        CheckConfig::Tcp(TcpConfig {
            address: "127.0.0.1:6443".into(),
            source: None
        })
    );
    assert_eq!(t.monitor, MonitorConfig::default());
    assert!(t.check.build().is_ok());

    let t = parse("check = { type = \"exec\", command = [\"/bin/true\"] }").unwrap();
    assert_eq!(
        t.check,
        CheckConfig::Exec(ExecConfig::new("/bin/true", Vec::<String>::new()))
    );

    let t = parse("check = { type = \"process\", name = \"nginx\" }").unwrap();
    assert!(t.check.build().is_ok());

    let t = parse(
        "check = { type = \"http\", url = \"http://10.0.0.1/\", expect_status = [200, 204] }",
    )
    .unwrap();
    let CheckConfig::Http(http) = &t.check else {
        panic!()
    };
    assert_eq!(http.expect_status, StatusMatch::Set(vec![200, 204]));

    let t =
        parse("check = { type = \"http\", url = \"http://10.0.0.1/\", expect_status = \"2xx\" }")
            .unwrap();
    let CheckConfig::Http(http) = &t.check else {
        panic!()
    };
    assert_eq!(http.expect_status, StatusMatch::Range(200, 299));
}

#[test]
fn configs_round_trip_through_serde() {
    let mut http = HttpConfig::new("https://127.0.0.1:6443/readyz");
    http.expect_status = StatusMatch::Range(200, 204);
    let check = CheckConfig::Http(http);
    let json = serde_json::to_string(&check).unwrap();
    assert_eq!(serde_json::from_str::<CheckConfig>(&json).unwrap(), check);
    let monitor = MonitorConfig {
        fastinter: Some(Duration::from_millis(250)),
        ..MonitorConfig::default()
    };
    let json = serde_json::to_string(&monitor).unwrap();
    assert_eq!(
        serde_json::from_str::<MonitorConfig>(&json).unwrap(),
        monitor
    );
}

/// What a rejection says, from parsing or from validation.
fn rejection(text: &str) -> String {
    match parse(text) {
        Err(e) => e.to_string(),
        Ok(t) => match t
            .monitor
            .validate()
            .and_then(|()| t.check.build().map(|_| ()))
        {
            Err(e) => e.to_string(),
            Ok(()) => panic!("accepted: {text}"),
        },
    }
}

#[test]
fn bad_configuration_is_rejected_clearly() {
    let tcp = "check = { type = \"tcp\", address = \"127.0.0.1:80\" }\n";
    let cases = [
        ("check = { type = \"http\", url = \"not a url\" }", "invalid URL"),
        ("check = { type = \"http\", url = \"ftp://h/x\" }", "not http or https"),
        ("check = { type = \"tcp\", address = \"127.0.0.1:80\", port = 1 }", "unknown field `port`"),
        ("check = { type = \"smtp\" }", "unknown variant `smtp`"),
        (
            "check = { type = \"http\", url = \"https://h/\", tls = { ca_file = \"/nonexistent/ca.pem\" } }",
            "cannot read CA file \"/nonexistent/ca.pem\"",
        ),
        (
            "check = { type = \"http\", url = \"http://h/\", expect_status = \"600\" }",
            "not an HTTP status",
        ),
        ("check = { type = \"exec\", command = [] }", "`command`: is empty"),
        ("check = { type = \"process\" }", "exactly one of `name` and `pidfile`"),
        (&format!("{tcp}[monitor]\ninterval = \"0s\""), "`interval` must be greater than zero"),
        (&format!("{tcp}[monitor]\ninterval = \"2\""), "has no unit"),
        (&format!("{tcp}[monitor]\nrise = 0"), "`rise` must be at least 1"),
        (&format!("{tcp}[monitor]\nfall = 0"), "`fall` must be at least 1"),
        (&format!("{tcp}[monitor]\njitter = 0.9"), "`jitter`"),
        (&format!("{tcp}[monitor]\ninitial = \"maybe\""), "unknown variant `maybe`"),
        (&format!("{tcp}[monitor]\nintervall = \"1s\""), "unknown field `intervall`"),
    ];
    for (text, want) in cases {
        let got = rejection(text);
        assert!(got.contains(want), "{text}\n  got: {got}\n  want: {want}");
    }
}

#[test]
fn parse_errors_carry_the_location() {
    let err = parse(
        "check = { type = \"tcp\", address = \"127.0.0.1:80\" }\n[monitor]\nrise = \"two\"\n",
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("line 3"), "{text}");
}

#[test]
fn zero_durations_are_rejected_for_every_field() {
    for field in ["interval", "timeout", "fastinter", "downinter"] {
        let text = format!(
            "check = {{ type = \"tcp\", address = \"127.0.0.1:80\" }}\n[monitor]\n{field} = \"0ms\"\n"
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(
            err.contains(&format!("`{field}` must be greater than zero")),
            "{err}"
        );
        // The parser points at the offending table.
        assert!(err.contains("line "), "{err}");
    }
    let built = MonitorConfig {
        timeout: Duration::ZERO,
        ..MonitorConfig::default()
    };
    assert!(matches!(
        built.validate(),
        Err(ConfigError::ZeroDuration { field: "timeout" })
    ));
}
