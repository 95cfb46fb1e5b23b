"""The ``bizstream`` command. Thin: each module parses one group of commands, then calls the library.

    app.py      the root command, shared options and consoles, main()
    broker.py   bizstream broker start|stop|status
    stream.py   worker, monitor, trainer, sink, produce, consume, score, demo
    labels.py   bizstream labels import|export, bizstream label
    models.py   bizstream train ..., bizstream models ..., bizstream export onnx
    plugins.py  bizstream plugins
"""

from __future__ import annotations

from bizstream.cli import broker, labels, models, plugins, stream
from bizstream.cli.app import app, main

__all__ = ["app", "broker", "labels", "main", "models", "plugins", "stream"]
