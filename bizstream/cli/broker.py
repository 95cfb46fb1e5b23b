"""``bizstream broker``: the local single-node Kafka broker."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated

import typer

from bizstream.cli.app import ConfigOption, app, err, load, out

broker_app = typer.Typer(help="Run the local single-node Kafka broker (fetched from Maven Central).", no_args_is_help=True)
app.add_typer(broker_app, name="broker")


@broker_app.command("start")
def broker_start(config: ConfigOption = None) -> None:
    """Fetch Kafka (first time), start it on 127.0.0.1, wait until it answers, create bizstream's topics."""
    from bizstream.stream.broker import LocalBroker
    from bizstream.stream.client import ensure_topics

    settings = load(config)
    broker = LocalBroker(settings.broker)
    running = broker.status().ready
    if not running:
        err.print(f"starting Kafka {settings.broker.kafka_version} (data and logs in {broker.directory}) ...")
    status = broker.start()
    asyncio.run(ensure_topics(dataclasses.replace(settings.kafka, bootstrap_servers=status.bootstrap_servers)))
    out.print(f"Kafka {'was already' if running else 'is'} up on {status.bootstrap_servers} (pid {status.pid})")


@broker_app.command("stop")
def broker_stop(
    config: ConfigOption = None,
    delete: Annotated[bool, typer.Option(help="Also delete the broker's data and logs.")] = False,
) -> None:
    """Stop the local broker cleanly (SIGTERM, then SIGKILL after 30 s)."""
    from bizstream.stream.broker import LocalBroker

    broker = LocalBroker(load(config).broker)
    was = broker.status()
    broker.delete() if delete else broker.stop()
    out.print("stopped" if was.running else "the broker was not running")


@broker_app.command("status")
def broker_status(config: ConfigOption = None) -> None:
    """Say whether the local broker runs and answers; exit 1 when it does not."""
    from bizstream.stream.broker import LocalBroker

    status = LocalBroker(load(config).broker).status()
    state = "ready" if status.ready else ("running, not answering yet" if status.running else "stopped")
    out.print(f"{state}: {status.bootstrap_servers} pid={status.pid} dir={status.directory}")
    if not status.ready:
        raise typer.Exit(1)
