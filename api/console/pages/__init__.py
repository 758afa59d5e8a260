"""The console's page families, one module each (``api/console/pages/<family>.py``), each
exporting ``router`` and, for the navigation bar, ``NAV`` (a list of ``web.NavItem``). A new
family is added to ``FAMILIES`` here and nowhere else."""

from __future__ import annotations

import importlib
from types import ModuleType

from fastapi import APIRouter

from api.console.web import NavItem

# In the order the navigation shows them.
FAMILIES = (
    "home",
    "users",
    "emergency",
    "audit",
    "status",
    "matters",
    "holds",
    "custodian",
    "disposal",
    "productions",
    "exports",
    "jobs",
)


def _modules() -> list[ModuleType]:
    return [importlib.import_module(f"api.console.pages.{name}") for name in FAMILIES]


def all_pages() -> list[APIRouter]:
    return [module.router for module in _modules()]


def nav_items() -> list[NavItem]:
    return [item for module in _modules() for item in getattr(module, "NAV", ())]
