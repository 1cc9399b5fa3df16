"""Studio pages (server-rendered, HTMX)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
