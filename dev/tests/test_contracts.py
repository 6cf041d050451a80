"""The wire-contract check (shop.dev.contracts): the code keeps the contracts in contracts/,
and the check bites on what an older caller or callee would break on, and only on that."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from shop.dev import contracts
from shop.dev.contracts import breaking

Contracts = dict[str, Any]


@pytest.fixture(scope="module")
def recorded() -> Contracts:
    return contracts.snapshots()


def changed(recorded: Contracts, service: str, change: Any) -> Contracts:
    """A copy of the contracts with `change` applied to one service's contract."""
    new = copy.deepcopy(recorded)
    change(new[service]["handlers"])
    return new


def test_the_code_keeps_the_recorded_contracts(recorded: Contracts) -> None:
    """What `./task contracts` checks, in the suite: no change an older caller or callee
    would break on (compatible ones are recorded with `./task contracts -- --update`)."""
    assert recorded, "contracts/ is empty: run ./task contracts -- --update"
    assert breaking(recorded, contracts.current()) == []


def test_a_required_input_field_added_is_reported_by_handler_and_field(
    recorded: Contracts,
) -> None:
    def require_customer(handlers: dict[str, Any]) -> None:
        body = handlers["authorize"]["input"]
        body["properties"]["customer_id"] = {"type": "string"}
        body["required"].append("customer_id")

    assert breaking(recorded, changed(recorded, "Payments", require_customer)) == [
        "Payments/authorize input: field customer_id is required now"
        " (an older caller may not send it)"
    ]


def test_an_output_field_dropped_is_reported_by_handler_and_field(recorded: Contracts) -> None:
    def drop_intent_id(handlers: dict[str, Any]) -> None:
        answer = handlers["authorize"]["output"]
        del answer["properties"]["payment_intent_id"]
        answer["required"].remove("payment_intent_id")

    assert breaking(recorded, changed(recorded, "Payments", drop_intent_id)) == [
        "Payments/authorize output: field payment_intent_id was removed or made optional"
        " (an older caller reads it)"
    ]


def test_a_field_of_a_nested_model_is_followed_through_its_ref(recorded: Contracts) -> None:
    def require_sku_note(handlers: dict[str, Any]) -> None:
        line = handlers["send"]["input"]["$defs"]["OrderLine"]
        line["properties"]["note"] = {"type": "string"}
        line["required"].append("note")

    [problem] = breaking(recorded, changed(recorded, "Email", require_sku_note))
    assert problem.startswith("Email/send input.lines[]: field note is required now")


def test_a_handler_removed_and_an_enum_value_removed_from_an_input_break(
    recorded: Contracts,
) -> None:
    def narrow(handlers: dict[str, Any]) -> None:
        del handlers["send"]

    assert breaking(recorded, changed(recorded, "Email", narrow)) == [
        "Email/send: the handler was removed or renamed"
    ]

    def no_refund_mail(handlers: dict[str, Any]) -> None:
        handlers["send"]["input"]["properties"]["kind"]["enum"].remove("refunded")

    assert breaking(recorded, changed(recorded, "Email", no_refund_mail)) == [
        "Email/send input.kind: the value 'refunded' is no longer accepted"
        " (an older caller may send it)"
    ]


# ---- the rules on small schemas --------------------------------------------------------


def contract(input_: Any = None, output: Any = None, takes_body: bool = True) -> Contracts:
    handler = {"type": None, "takes_body": takes_body, "input": input_, "output": output}
    return {"S": {"type": "SERVICE", "handlers": {"h": handler}}}


def obj(required: list[str] | None = None, **properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or []}


STR, INT, NUM = {"type": "string"}, {"type": "integer"}, {"type": "number"}
OPTIONAL_STR = {"anyOf": [STR, {"type": "null"}], "default": None}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param(
            contract(obj(["a"], a=STR)),
            contract(obj(["a"], a=STR, b=OPTIONAL_STR)),
            id="an optional input field added",
        ),
        pytest.param(
            contract(obj(["a"], a=STR)), contract(obj([], a=STR)), id="an input field made optional"
        ),
        pytest.param(
            contract(obj(a={"enum": ["x"]})),
            contract(obj(a={"enum": ["x", "y"]})),
            id="an enum value added to an input",
        ),
        pytest.param(contract(obj(a=INT)), contract(obj(a=NUM)), id="an input type widened"),
        pytest.param(
            contract(obj(a={**INT, "minimum": 1})),
            contract(obj(a=INT)),
            id="an input bound dropped",
        ),
        pytest.param(
            contract(output=obj(["a"], a=STR)),
            contract(output=obj(["a", "b"], a=STR, b=INT)),
            id="an output field added",
        ),
        pytest.param(
            contract(output=obj(a=OPTIONAL_STR)),
            contract(output=obj(["a"], a=STR)),
            id="an output field made always present",
        ),
        pytest.param(
            contract(output=obj(a={"enum": ["x", "y"]})),
            contract(output=obj(a={"const": "x"})),
            id="an output enum narrowed",
        ),
    ],
)
def test_additive_changes_pass(old: Contracts, new: Contracts) -> None:
    assert breaking(old, new) == []


def test_a_new_handler_and_a_new_service_pass() -> None:
    old = contract(obj(a=STR))
    new = copy.deepcopy(old)
    new["S"]["handlers"]["h2"] = new["S"]["handlers"]["h"]
    new["T"] = old["S"]
    assert breaking(old, new) == []


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        pytest.param(
            contract(obj(a=NUM)),
            contract(obj(a=INT)),
            "S/h input.a: a value of type number is no longer accepted",
            id="an input type narrowed",
        ),
        pytest.param(
            contract(obj(a=STR)),
            contract(obj(a={"enum": ["x"]})),
            "S/h input.a: any string is no longer accepted",
            id="an input made an enum",
        ),
        pytest.param(
            contract(obj(a=INT)),
            contract(obj(a={**INT, "maximum": 9})),
            "S/h input.a: a value over maximum 9 is no longer accepted",
            id="an input bound tightened",
        ),
        pytest.param(
            contract(output=obj(["a"], a=STR)),
            contract(output=obj(a=OPTIONAL_STR)),
            "S/h output: field a was removed or made optional",
            id="an output field made optional",
        ),
        pytest.param(
            contract(output=obj(a={"enum": ["x"]})),
            contract(output=obj(a={"enum": ["x", "y"]})),
            "S/h output.a: the value 'y' may now be answered",
            id="an output enum value added",
        ),
        pytest.param(
            contract(output=obj(a=INT)),
            contract(output=obj(a=NUM)),
            "S/h output.a: a value of type number may now be answered",
            id="an output type widened",
        ),
        pytest.param(
            contract(None, takes_body=False),
            contract(obj(a=STR)),
            "S/h: a body is required now",
            id="a body required where none was",
        ),
        pytest.param(
            contract(output=obj(a=STR)),
            contract(output=None),
            "S/h output: answers nothing now",
            id="an answer dropped",
        ),
    ],
)
def test_breaking_changes_are_named(old: Contracts, new: Contracts, problem: str) -> None:
    found = breaking(old, new)
    assert found and found[0].startswith(problem), found


def test_update_records_compatible_changes_and_refuses_breaking_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recorded: Contracts
) -> None:
    monkeypatch.setattr(contracts, "FOLDER", tmp_path)
    assert contracts.main(["--update"]) == 0  # an empty folder: everything is new
    assert contracts.snapshots(tmp_path) == json.loads(json.dumps(contracts.current()))
    payments = tmp_path / "Payments.json"
    stricter = json.loads(payments.read_text())
    stricter["handlers"]["authorize"]["input"]["required"].append("return_url")
    payments.write_text(json.dumps(stricter))
    assert contracts.main([]) == 0  # the code takes an order without return_url: compatible
    assert contracts.main(["--update"]) == 0
    assert json.loads(payments.read_text()) == recorded["Payments"]
    gone = json.loads(payments.read_text())
    gone["handlers"]["void_everything"] = gone["handlers"]["authorize"]
    payments.write_text(json.dumps(gone))
    assert contracts.main(["--update"]) == 1  # a handler the code no longer has
    assert "void_everything" in payments.read_text()
    assert contracts.main(["--update", "--breaking"]) == 0
    assert "void_everything" not in payments.read_text()
