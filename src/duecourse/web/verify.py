"""Placeholder router: filled in by its owner (issue 4)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
