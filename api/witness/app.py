"""The witness's HTTP interface: ``POST /add-checkpoint`` (C2SP tlog-witness) and, for its
operator and the logs, ``GET /`` (its verifier key) and ``GET /logs/<origin>`` (the latest
checkpoint it cosigned, with its own cosignature)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from api.limits import Limits, RequestLimits
from api.witness.home import WitnessHome
from api.witness.protocol import Witness
from api.witness.state import WitnessState

MAX_REQUEST = 64 * 1024  # a checkpoint, 63 proof lines and a few signatures fit many times over
PROBLEM_JSON = "application/problem+json"


def problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": detail.split(":")[0], "status": status, "detail": detail},
        status_code=status,
        media_type=PROBLEM_JSON,
    )


def create_witness_app(witness: Witness, vkey: str) -> FastAPI:
    app = FastAPI(title="Chartledger witness", docs_url=None, redoc_url=None, openapi_url=None)
    # Open to the network like the API: its header fields bounded too (uvicorn's httptools
    # parser takes any size), and a body over the limit refused before it is read.
    bounds = Limits(max_body_bytes=MAX_REQUEST, max_upload_bytes=MAX_REQUEST)
    app.add_middleware(RequestLimits, limits=bounds)

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        data = b""
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_REQUEST:
                return problem(413, "request too large")
        answer = witness.add_checkpoint(data)
        if answer.status == 200 or answer.content_type != "text/plain; charset=utf-8":
            return PlainTextResponse(
                answer.body, status_code=answer.status, media_type=answer.content_type
            )
        return problem(answer.status, answer.body.strip())

    @app.get("/")
    def about() -> PlainTextResponse:
        return PlainTextResponse(vkey + "\n")

    @app.get("/logs/{origin:path}")
    def latest(origin: str) -> Response:
        known = witness.state.latest(origin)
        if known.note is None:
            return problem(404, "no checkpoint cosigned for this origin")
        note = bytes(known.note)
        body = note.split(b"\n\n", 1)[0] + b"\n"
        return Response(note + witness.cosign(body).encode(), media_type="text/plain")

    return app


def app_from_home(home: WitnessHome) -> FastAPI:
    state = WitnessState(home.state_path)
    witness = Witness(home.name, home.key(), home.logs(), state)
    app = create_witness_app(witness, home.vkey())
    app.router.on_shutdown.append(state.close)
    return app


def app_from_environment() -> FastAPI:
    """What uvicorn builds in ``chartledger witness serve`` (the home from the environment)."""
    return app_from_home(WitnessHome.from_option(None))
