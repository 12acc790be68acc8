"""/v1/characters/{id}/embed: the copy-paste snippet that puts a character on a web site.

The widget (``web/widget.js``) runs in the site's visitors' browsers, so the snippet names a
*publishable* key, which works only from the origins it is bound to. No key's secret is ever put
in a snippet: only a hash of each key is stored, and a secret key must never reach a web page
anyway. The snippet holds a placeholder and the command that creates the right key.
"""

from __future__ import annotations

import html
import shlex
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from talkie.server.auth import normalize_origin
from talkie.server.context import Caller, Svc, character_for
from talkie.server.errors import errors

router = APIRouter(prefix="/v1/characters", tags=["characters"])

KEY_PLACEHOLDER = "pk_YOUR_PUBLISHABLE_KEY"


class Embed(BaseModel):
    character_id: str
    widget_url: str = Field(description="the widget's script, served by this server")
    script: str = Field(description="one tag: a launcher bubble that opens the character")
    element: str = Field(description="inline: the widget script plus <talkie-character>")
    key_placeholder: str = Field(description="replace it with a publishable key (pk_...)")
    create_key: str = Field(
        description="the CLI command that creates a publishable key for this character, bound "
        "to the site's origin (the `origin` query parameter, else a placeholder)"
    )


@router.get(
    "/{character_id}/embed",
    response_model=Embed,
    responses=errors(400, 401, 403, 404),
    summary="The snippet that embeds this character in a web site (widget.js), and the command "
    "that creates the publishable key it needs",
)
async def embed_snippet(
    character_id: str,
    request: Request,
    who: Caller,
    svc: Svc,
    origin: Annotated[str | None, Query(max_length=300)] = None,
) -> Embed:
    who.require("characters:read")
    record = await character_for(svc, who, character_id)
    site = normalize_origin(origin) if origin else "https://YOUR.SITE"
    base = (svc.options.public_url or str(request.base_url)).rstrip("/")
    widget = f"{base}/widget.js"
    attr = html.escape  # ids are plain, but the snippet is HTML: never trust that
    script = (
        f'<script src="{attr(widget)}" data-character="{attr(record.id)}" '
        f'data-key="{KEY_PLACEHOLDER}" async></script>'
    )
    element = (
        f'<script src="{attr(widget)}" async></script>\n'
        f'<talkie-character character="{attr(record.id)}" key="{KEY_PLACEHOLDER}">'
        "</talkie-character>"
    )
    command = [
        "talkie", "keys", "create", "--name", f"site {record.name}"[:60], "--scope", "sessions",
        "--publishable", "--origin", site, "--tenant", record.tenant, "--character", record.id,
    ]  # fmt: skip
    return Embed(
        character_id=record.id, widget_url=widget, script=script, element=element,
        key_placeholder=KEY_PLACEHOLDER, create_key=shlex.join(command),
    )  # fmt: skip
