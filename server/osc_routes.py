"""HTTP routes for live audition over OSC (present only when the server was started with an OSC port)."""

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from extension.osc import OscBridge


class FxParamValue(BaseModel):
    """``POST /v1/osc/fxparam``: set one FX parameter in REAPER (indices 1-based as in REAPER's OSC)."""

    model_config = ConfigDict(allow_inf_nan=False)

    track: int = Field(ge=1, le=100_000)
    fx: int = Field(ge=1, le=10_000)
    param: int = Field(ge=1, le=100_000)
    value: float = Field(ge=0.0, le=1.0, description="normalised parameter value 0..1")


class FxParamSent(BaseModel):
    address: str
    value: float


def add_osc_routes(app: FastAPI, bridge: OscBridge) -> None:
    """Register ``POST /v1/osc/fxparam`` and ``GET /v1/osc/feedback`` for ``bridge``."""

    @app.post("/v1/osc/fxparam", response_model=FxParamSent)
    def send_fx_param(body: FxParamValue) -> dict[str, Any]:
        address = bridge.send_fx_param(body.track, body.fx, body.param, body.value)
        return {"address": address, "value": body.value}

    @app.get("/v1/osc/feedback")
    def feedback() -> dict[str, Any]:
        return bridge.feedback.snapshot()
