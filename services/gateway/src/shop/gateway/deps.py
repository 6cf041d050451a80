"""Long-lived clients live on app.state (made in the lifespan); handlers get them from here."""

import secrets
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from shop.gateway.progress_hub import ProgressHub
from shop.gateway.restate_ingress import RestateIngress
from shop.gateway.settings import GatewaySettings


def get_settings(request: Request) -> GatewaySettings:
    return request.app.state.settings


def get_ingress(request: Request) -> RestateIngress:
    return request.app.state.ingress


def get_hub(request: Request) -> ProgressHub:
    return request.app.state.hub


Settings = Annotated[GatewaySettings, Depends(get_settings)]
Ingress = Annotated[RestateIngress, Depends(get_ingress)]
Hub = Annotated[ProgressHub, Depends(get_hub)]


def require_admin(
    settings: Settings, authorization: Annotated[str | None, Header()] = None
) -> None:
    expected = f"Bearer {settings.admin_token.get_secret_value()}"
    if authorization is None or not secrets.compare_digest(authorization, expected):
        raise HTTPException(401, "missing or wrong admin token", {"WWW-Authenticate": "Bearer"})
