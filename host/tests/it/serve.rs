//! Booting the host in-process with the real plugins, the real policies and
//! the deterministic inference backend: it starts only under the policy set
//! its attestation names, and `measure` accounts for every file it runs.
//! The whole chain in front of a serving host (client, relay, gateway) is
//! tested in `tests/e2e`.
//!
//! Attestation is SIMULATED on the public development platform.

use std::sync::Arc;

use cloister_host::config::ProviderKind;
use cloister_host::launch::{LaunchDigests, LaunchError};
use cloister_host::logfilter::MemorySink;
use cloister_host::serve::{AttestationError, BootError};
use cloister_host::{LoadError, load_runtime};

use cloister_inference::EngineIdentity;
use cloister_wire::HostData;

use crate::common::{HOST_BINARY, boot, config, engine, policies, repo_root};

/// What `cloister-host measure` prints for `config` as the binary `binary`,
/// on the test engine.
fn measure(config: &cloister_host::HostConfig, binary: [u8; 32]) -> LaunchDigests {
    LaunchDigests::compute(config, &policies(config), binary, &engine().identity())
        .expect("measure")
}

#[test]
fn the_host_refuses_a_host_data_that_is_not_its_launch() {
    let mut config = config(&repo_root().join("policies"));
    config.attestation.simulated.host_data = Some([0x11; 32]);
    let loaded = measure(&config, HOST_BINARY).host_data;
    let error = boot(&config)
        .err()
        .unwrap_or_else(|| panic!("the host started with foreign HOST_DATA"));
    assert!(
        matches!(
            &error,
            BootError::Attestation(AttestationError::LaunchMismatch { reported, loaded: actual })
                if *reported == HostData([0x11; 32]) && *actual == HostData(loaded)
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&hex::encode([0x11; 32])) && message.contains(&hex::encode(loaded)),
        "{message}"
    );
}

#[test]
fn the_host_starts_when_the_configured_host_data_is_its_launch() {
    let dir = policy_copy();
    let mut config = config(dir.path());
    config.attestation.simulated.host_data = Some(measure(&config, HOST_BINARY).host_data);
    let host = boot(&config).unwrap_or_else(|e| panic!("boot: {e}"));
    assert_eq!(
        Some(host.launch().host_data),
        config.attestation.simulated.host_data
    );
}

#[test]
fn a_sev_guest_host_never_starts_without_a_report_naming_its_policies() {
    // Here there is no /dev/sev-guest; on an SNP guest the launch's
    // HOST_DATA is not this test's policy set. Either way: no start.
    let mut config = config(&repo_root().join("policies"));
    config.attestation.provider = ProviderKind::SevGuest;
    let error = boot(&config)
        .err()
        .unwrap_or_else(|| panic!("started without genuine attestation"));
    assert!(
        matches!(
            &error,
            BootError::Attestation(
                AttestationError::BootReport(_) | AttestationError::LaunchMismatch { .. }
            )
        ),
        "{error:?}"
    );
}

#[test]
fn a_compile_cache_is_refused_with_real_attestation() {
    // Cached native code comes from outside the launch measurement: only a
    // simulated host may read it.
    let dir = policy_copy();
    let mut config = config(dir.path());
    assert!(config.runtime.compile_cache.is_some());
    let policies = policies(&config);
    let load = |config: &cloister_host::HostConfig| {
        let filter =
            cloister_host::HostConfig::log_filter(&policies, Arc::new(MemorySink::default()));
        load_runtime(config, &policies, engine(), filter)
    };
    config.attestation.provider = ProviderKind::SevGuest;
    let error = load(&config)
        .err()
        .unwrap_or_else(|| panic!("a sev-guest host loaded plugins from a compile cache"));
    assert!(
        matches!(error, LoadError::CompileCacheOutsideSimulation),
        "{error:?}"
    );
    config.attestation.provider = ProviderKind::Simulated;
    load(&config).unwrap_or_else(|e| panic!("a simulated host with the cache: {e}"));
}

/// Copies the repository's policies into a fresh folder, with the Rust
/// plugins only: they compile in a second, the Python and JavaScript ones
/// (which other tests load) in tens of seconds when the cache is cold.
fn policy_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let from = repo_root().join("policies");
    std::fs::create_dir(dir.path().join("plugins")).expect("mkdir");
    for name in [
        "log-allowlist.toml",
        "plugins/summarise.toml",
        "plugins/suggest.toml",
    ] {
        std::fs::copy(from.join(name), dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    dir
}

#[test]
fn measure_names_every_policy_file_and_changes_with_any_of_them() {
    let dir = policy_copy();
    let config = config(dir.path());
    let before = measure(&config, HOST_BINARY);

    let json = serde_json::to_value(&before).expect("json");
    let keys: Vec<&str> = json
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys.iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        [
            "mode",
            "measurement",
            "host_data",
            "policy_set",
            "model",
            "host_config",
            "host_settings",
            "engine_settings",
            "snp_policy",
            "platform_info",
            "host_binary",
            "plugins",
            "policy_files"
        ]
        .into()
    );
    assert_eq!(json["mode"], "simulated");
    assert_eq!(json["measurement"].as_str().map(str::len), Some(96));
    assert_eq!(json["host_data"].as_str().map(str::len), Some(64));
    assert_eq!(json["host_binary"], hex::encode(HOST_BINARY));
    let names: Vec<&str> = before
        .policy_files
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "log-allowlist.toml",
            "plugins/suggest.toml",
            "plugins/summarise.toml"
        ]
    );
    let summarise = before
        .plugins
        .iter()
        .find(|p| p.name == "summarise")
        .expect("summarise measured");
    let manifest =
        std::fs::read_to_string(dir.path().join("plugins/summarise.toml")).expect("manifest");
    assert!(manifest.contains(&format!("sha256:{}", hex::encode(summarise.digest))));

    let path = dir.path().join("log-allowlist.toml");
    let mut allow_list = std::fs::read_to_string(&path).expect("read");
    allow_list.push_str("\n# reviewed again\n");
    std::fs::write(&path, allow_list).expect("write");
    let after = measure(&config, HOST_BINARY);
    assert_ne!(after.host_data, before.host_data);
    assert_ne!(after.policy_set, before.policy_set);
    assert_eq!(after.host_config, before.host_config);
    assert_ne!(after.measurement, before.measurement);
    assert_ne!(after.policy_files[0].digest, before.policy_files[0].digest);
    assert_eq!(after.policy_files[1..], before.policy_files[1..]);
    assert_eq!(after.plugins, before.plugins);

    let other_binary = measure(&config, [0xb2; 32]);
    assert_ne!(other_binary.measurement, after.measurement);
    assert_eq!(other_binary.host_data, after.host_data);

    // On hardware the firmware measures the VM image; the host cannot know it.
    let mut hardware = config.clone();
    hardware.attestation.provider = ProviderKind::SevGuest;
    let real = measure(&hardware, HOST_BINARY);
    assert_eq!(
        (real.measurement, real.snp_policy, real.platform_info),
        (None, None, None)
    );
    assert_eq!(real.policy_set, after.policy_set);
    assert_ne!(
        real.host_config, after.host_config,
        "the attestation provider is a setting"
    );
    assert_eq!(
        serde_json::to_value(&real).expect("json")["mode"],
        "sev-guest"
    );
}

/// HOST_DATA binds the model weights and every setting that changes
/// behaviour, not only the policies: a host whose operator swapped either
/// reports another HOST_DATA.
#[test]
fn host_data_changes_with_the_model_weights_and_the_settings() {
    let config = config(&repo_root().join("policies"));
    let policies = policies(&config);
    let released = measure(&config, HOST_BINARY);
    let with_engine = |identity: &EngineIdentity| {
        LaunchDigests::compute(&config, &policies, HOST_BINARY, identity).expect("measure")
    };
    let weights = |digest| EngineIdentity {
        weights: Some(digest),
        settings: engine().identity().settings,
    };
    let model_a = with_engine(&weights([0xa0; 32]));
    let model_b = with_engine(&weights([0xa1; 32]));
    assert_eq!(model_a.model, Some([0xa0; 32]));
    assert_ne!(model_a.host_data, model_b.host_data, "other weights");
    assert_ne!(model_a.host_data, released.host_data, "weights or none");
    assert_eq!(
        (model_a.policy_set, model_a.host_config),
        (model_b.policy_set, model_b.host_config)
    );
    assert_eq!(
        HostData(model_a.host_data),
        HostData::of_launch(&model_a.policy_set, Some(&[0xa0; 32]), &model_a.host_config)
    );

    let mut more_tokens = engine().identity();
    more_tokens.settings.push_str(" context=4096");
    assert_ne!(with_engine(&more_tokens).host_config, released.host_config);

    let mut longer_sessions = config.clone();
    longer_sessions.serve.idle_timeout_secs += 1;
    assert_ne!(
        measure(&longer_sessions, HOST_BINARY).host_data,
        released.host_data
    );
    let mut compiled_afresh = config.clone();
    compiled_afresh.runtime.compile_cache = None;
    assert_ne!(
        measure(&compiled_afresh, HOST_BINARY).host_data,
        released.host_data,
        "whether native code is read from a compile cache"
    );
    let mut other_address = config.clone();
    other_address.serve.listen = "127.0.0.1:9".parse().expect("address");
    assert_eq!(
        measure(&other_address, HOST_BINARY).host_data,
        released.host_data,
        "where the host listens changes nothing it computes"
    );
}

#[test]
fn measure_refuses_a_component_that_differs_from_its_manifest() {
    let plugins = tempfile::tempdir().expect("tempdir");
    let mut config = config(&repo_root().join("policies"));
    let real = config.plugin_dir.clone();
    for manifest in policies(&config).manifests() {
        let name = &manifest.component;
        std::fs::copy(real.join(name), plugins.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let mut tampered = std::fs::read(plugins.path().join("suggest.wasm")).expect("read");
    tampered.push(0);
    std::fs::write(plugins.path().join("suggest.wasm"), tampered).expect("write");
    config.plugin_dir = plugins.path().to_path_buf();
    let error = LaunchDigests::compute(
        &config,
        &policies(&config),
        HOST_BINARY,
        &engine().identity(),
    )
    .expect_err("tampered component");
    assert!(
        matches!(&error, LaunchError::Load(LoadError::DigestMismatch { plugin, .. }) if plugin == "suggest"),
        "{error:?}"
    );
}
