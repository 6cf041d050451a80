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
        "orders",
        "postgres",
        "gateway",
        "prometheus",
    ):
        assert f"[program:{program}]" in conf
    assert conf.count("autorestart=true") == 12
    # The order book's migrator runs once per start: restarted only when it fails.
    migrator = conf[conf.index("[program:book-migrate]") :].split("[program:")[1]
    assert "autorestart=unexpected" in migrator


def test_only_the_orders_service_and_its_migrator_hold_the_books_passwords(tmp_path) -> None:
    stack = Stack(state=tmp_path, ports=Ports.free())
    secrets = {stack.book.password(role) for role in ("superuser", "migrator", "orders")}
    for name, (command, env) in stack.programs().items():
        held = {v for v in env.values() if v in secrets} | (set(command) & secrets)
        expected = {"orders": {stack.book.password("orders")}}
        expected["book-migrate"] = {stack.book.password("migrator")}
        assert held == expected.get(name, set()), name


def test_the_stripe_emulator_keeps_its_ledger_in_the_state_folder(tmp_path) -> None:
    stack = Stack(state=tmp_path, ports=Ports.free())
    command, _ = stack.programs()["stripe"]
    assert command[command.index("--ledger") + 1] == str(tmp_path / "stripe-ledger.sqlite3")
