"""The polling baseline for bench/live_latency.py: a plain Dash dcc.Interval(1 s) page.

Only mounted when CC_BENCH=1. It reads the latest state from Redis in a server callback once a
second, the way a typical Dash dashboard does, and records publish-to-page latency in the browser.
Latency is taken when the data reaches the page, before any drawing, so the ratio is conservative.
"""

from __future__ import annotations

import os

import dash
import msgspec
import redis
from dash import ClientsideFunction, Input, Output, dcc, html

from spine import channels
from spine.contract import EntityUpdate

PATH = "/bench/interval"
_decoder = msgspec.json.Decoder(EntityUpdate)


def enabled() -> bool:
    return os.environ.get("CC_BENCH") == "1"


def layout() -> html.Div:
    return html.Div([dcc.Interval(id="bench-tick", interval=1000), dcc.Store(id="bench-data"),
                     html.Div(id="bench-out", children="polling")], className="cc-page")


def install(app: dash.Dash, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)

    @app.callback(Output("bench-data", "data"), Input("bench-tick", "n_intervals"))
    def poll(_: int | None) -> list[list]:
        values = client.hvals(channels.state_key("bus"))
        return [[u.id, u.ts] for u in map(_decoder.decode, values)]

    app.clientside_callback(ClientsideFunction("ccBench", "record"), Output("bench-out", "children"),
                            Input("bench-data", "data"))
