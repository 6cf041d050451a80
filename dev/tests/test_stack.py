from shop.dev.stack import Ports, Stack, restate_tracing


def test_restate_tracing_follows_the_otel_settings() -> None:
    assert restate_tracing({}) == {}
    grpc = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
    }
    assert restate_tracing(grpc) == {"RESTATE_TRACING_ENDPOINT": "http://collector:4317"}
    http = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert restate_tracing(http) == {"RESTATE_TRACING_ENDPOINT": "http://collector:4317"}
    given = {**http, "RESTATE_TRACING_ENDPOINT": "http://elsewhere:4317"}
    assert restate_tracing(given) == {"RESTATE_TRACING_ENDPOINT": "http://elsewhere:4317"}


def test_supervisor_config_has_every_program_restarting(tmp_path) -> None:
    conf = Stack(state=tmp_path, ports=Ports.free()).supervisor_conf()
    for program in (
        "restate",
        "valkey",
        "smtp",
        "stripe",
        "fulfilment",
        "payments",
        "inventory",
        "email",
        "gateway",
    ):
        assert f"[program:{program}]" in conf
    assert conf.count("autorestart=true") == 9


def test_the_stripe_emulator_keeps_its_ledger_in_the_state_folder(tmp_path) -> None:
    stack = Stack(state=tmp_path, ports=Ports.free())
    command, _ = stack.programs()["stripe"]
    assert command[command.index("--ledger") + 1] == str(tmp_path / "stripe-ledger.sqlite3")
