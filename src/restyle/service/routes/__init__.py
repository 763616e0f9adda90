"""The API's routes, one `APIRouter` per area; `create_app` includes each of `ROUTERS`."""

from __future__ import annotations

from fastapi import APIRouter

from restyle.service.routes import engines, health, jobs, live, refines, styles, stylize

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    styles.router,
    engines.router,
    live.router,
    jobs.router,
    refines.router,
    stylize.router,
)
