"""docker-compose.yml cannot run here (no Docker engine), so check the file itself."""

from __future__ import annotations

from typing import Any

import typer
import yaml

from bizstream.cli import app
from tests.conftest import ROOT


def check_command(argv: list[str]) -> None:
    """Raise AssertionError unless argv names a real bizstream (sub)command and only options it has."""
    command: Any = typer.main.get_command(app)
    words = list(argv)
    while getattr(command, "commands", None):
        name = words.pop(0)
        assert name in command.commands, f"no command {name!r}; there are {sorted(command.commands)}"
        command = command.commands[name]
    options = {opt: p for p in command.params if p.param_type_name == "option" for opt in p.opts + p.secondary_opts}
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    positional = 0
    while words:
        word = words.pop(0)
        if word.startswith("-"):
            assert word in options, f"{command.name} has no option {word}; it has {sorted(options)}"
            if not options[word].is_flag:
                assert words, f"option {word} needs a value"
                words.pop(0)
        else:
            positional += 1
    assert positional == len(arguments), f"{command.name} takes {len(arguments)} arguments, got {positional}"


def test_compose_parses_and_every_bizstream_service_runs_a_real_command() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    ours = {name: s for name, s in services.items() if "build" in s}
    assert {"worker", "sink", "monitor", "trainer", "producer", "scores"} <= set(ours)
    for name, service in ours.items():
        command = service["command"]
        assert command[0] == "bizstream", name
        check_command(command[1:])
        assert service["environment"]["BIZSTREAM_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"
        for word in command:
            if word.startswith("data/"):
                assert (ROOT / word).exists(), f"{name} reads {word}, which the image does not have"
    assert (ROOT / "Dockerfile").exists()
    # Models reach workers over Kafka (issue 15): no volume of the worker's is the trainer's.
    assert not {v.split(":")[0] for v in ours["worker"].get("volumes", [])} & {v.split(":")[0] for v in ours["trainer"].get("volumes", [])}


def test_the_check_catches_wrong_commands_and_options() -> None:
    for bad in (["consume", "scores", "--no-such-option", "1"], ["wroker"], ["broker", "restart"], ["produce"]):
        try:
            check_command(bad)
        except AssertionError:
            continue
        raise AssertionError(f"{bad} passed the check")
