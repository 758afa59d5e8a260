"""Routes that run in one worker thread, their caller checked there first.

FastAPI runs a sync route in a worker thread, and each sync dependency in a worker thread of
its own, so the caller's check (``api.deps.current_user``, which reads the ledger) cost every
request a second hand-off between the event loop and the threads. bench/api.py (PostgreSQL,
chart read, 16 clients) measured that hand-off and the dependencies around it at about a fifth
of the server's CPU time per request.

``Router`` registers a sync route whose signature names its caller (one parameter annotated
``CurrentUser`` or a role of ``api.roles``) as an async route that hands one function to a
worker thread: it checks the caller and their role, then runs the route with the principal.
The route gets the same arguments and raises the same errors, and its OpenAPI operation is the
same (the bearer scheme included); any other route is registered as it is.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from fastapi import APIRouter, Request
from fastapi.params import Depends
from starlette.concurrency import run_in_threadpool

from api.auth import Principal
from api.deps import Caller, CallerDep, bearer, current_user
from api.errors import ApiError, Forbidden, Unauthenticated
from api.idempotency.middleware import IDEMPOTENCY_KEY, WRITES, begin
from api.roles import allowed

CALLER = "caller_"  # the parameter the wrapped route takes the unchecked caller by


class Router(APIRouter):
    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        route = in_one_thread(endpoint)
        if WRITES & set(kwargs.get("methods") or ()) and _needs_caller(endpoint):
            # A write with a caller honours an Idempotency-Key (api/idempotency/): say so.
            kwargs["dependencies"] = [*(kwargs.get("dependencies") or ()), IDEMPOTENCY_KEY]
        super().add_api_route(path, route, **kwargs)


def in_one_thread(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint`` as an async route that checks its caller in the thread that runs it; the
    endpoint itself if it is async or does not name exactly one caller."""
    if inspect.iscoroutinefunction(endpoint):
        return endpoint
    hints = get_type_hints(endpoint, include_extras=True)
    signature = inspect.signature(endpoint)
    callers = [(n, roles) for n in signature.parameters if (roles := _roles(hints.get(n))) != ()]
    if len(callers) != 1:
        return endpoint
    name, roles = callers[0]

    def checked(caller: Caller) -> Principal:
        """The caller if they may use the route (the one rule for both paths below); a role
        refusal is recorded before it is answered."""
        principal = caller.principal()
        try:
            return allowed(principal, roles)
        except Forbidden:
            caller.refuse_role(principal, roles or ())
            raise

    async def route(**arguments: Any) -> Any:
        caller = arguments.pop(CALLER)

        def checked_then_run() -> Any:
            arguments[name] = principal = checked(caller)
            # A keyed write answered before is answered again here, not run twice.
            begin(caller.services.answers, str(principal.user_id))
            return endpoint(**arguments)

        return await run_in_threadpool(checked_then_run)

    # Keyword-only, so defaults may stand in any order; annotations resolved here, since
    # FastAPI would look up names in this module rather than the endpoint's.
    parameters = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints.get(p.name, p.annotation))
        for p in signature.parameters.values()
        if p.name != name
    ]
    parameters.append(
        inspect.Parameter(CALLER, inspect.Parameter.KEYWORD_ONLY, annotation=CallerDep)
    )
    returns = hints.get("return", signature.return_annotation)
    route.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=parameters,
        return_annotation=None if returns is type(None) else returns,  # as FastAPI reads "None"
    )
    for attribute in ("__name__", "__qualname__", "__doc__", "__module__"):
        setattr(route, attribute, getattr(endpoint, attribute))

    async def refusal(request: Request) -> ApiError | None:
        """Why the caller may not use the route (401 or 403), if so. For a request that FastAPI
        refused before the route ran (an invalid field): the caller's refusal outranks it, as it
        did when the check was a dependency, which FastAPI ran before validating the fields."""
        caller = Caller.of(request, await bearer(request))
        try:
            await run_in_threadpool(checked, caller)
        except (Unauthenticated, Forbidden) as refused:
            return refused
        return None

    route.refusal = refusal  # type: ignore[attr-defined]  # read by api.errors
    return route


def _roles(hint: Any) -> tuple[str, ...] | None:
    """For a caller parameter's annotation, the roles it requires (None: any); else ()."""
    if get_origin(hint) is not Annotated:
        return ()
    kind, *extras = get_args(hint)
    depends = [e for e in extras if isinstance(e, Depends)]
    if kind is not Principal or len(depends) != 1:
        return ()
    dependency = depends[0].dependency
    if dependency is current_user:
        return None
    return getattr(dependency, "roles", ())


def _needs_caller(function: Callable[..., Any], depth: int = 0) -> bool:
    """Whether ``function`` depends, directly or through its dependencies, on the caller's
    check (``current_user``): the routes where an Idempotency-Key has a caller to belong to."""
    if function is current_user:
        return True
    if depth > 8:  # dependencies are shallow; this only guards against a cycle
        return False
    hints = get_type_hints(function, include_extras=True)
    for name in inspect.signature(function).parameters:
        hint = hints.get(name)
        if get_origin(hint) is not Annotated:
            continue
        for extra in get_args(hint)[1:]:
            dependency = getattr(extra, "dependency", None) if isinstance(extra, Depends) else None
            if dependency is not None and _needs_caller(dependency, depth + 1):
                return True
    return False
