from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.dialects.postgresql import insert

from activities.rendering import TemplateSyntaxError, check_syntax
from api.deps import Engine
from models.delivery_policy import NAME_PATTERN, Channel
from models.faults import Fault
from models.tables import Template

router = APIRouter(prefix="/v1/templates", tags=["templates"])
TemplateKey = Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
COLUMNS = (Template.key, Template.channel, Template.subject, Template.body, Template.html, Template.kind,
           Template.category, Template.topic, Template.from_address, Template.reply_to, Template.version)


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Channel
    subject: str | None = Field(default=None, max_length=998)
    body: str = Field(min_length=1, max_length=500_000, description="Liquid; the text part of an email")
    html: str | None = Field(default=None, max_length=2_000_000, description="Liquid; email only")
    # marketing: consent, typology rules and quiet hours apply; transactional: only hard
    # suppressions do. `category` feeds typology rules, `topic` subscriptions.
    kind: Literal["marketing", "transactional"] = "marketing"
    category: str | None = Field(default=None, pattern=NAME_PATTERN)
    topic: str | None = Field(default=None, pattern=NAME_PATTERN)
    from_address: str | None = Field(default=None, max_length=320, description="email: From header")
    reply_to: str | None = Field(default=None, max_length=320, description="email: Reply-To header")


class TemplateOut(TemplateIn):
    key: str
    version: int


@router.put("/{key}", response_model=TemplateOut)
async def put_template(engine: Engine, body: TemplateIn, key: str = TemplateKey):
    faults = []
    for field in ("subject", "body", "html"):
        try:
            check_syntax(field, getattr(body, field) or "")
        except TemplateSyntaxError as error:
            faults.append(Fault(f"$.{field}", str(error)).as_error() | {"line": error.line})
    if faults:
        return JSONResponse({"detail": faults}, status_code=422)
    statement = insert(Template).values(key=key, **body.model_dump())
    statement = statement.on_conflict_do_update(
        index_elements=["key"],
        set_={**{name: statement.excluded[name] for name in TemplateIn.model_fields},
              "version": Template.version + 1, "updated_at": sa.func.now()},
    ).returning(*COLUMNS)
    async with engine.begin() as conn:
        row = (await conn.execute(statement)).one()
    return TemplateOut.model_validate(dict(row._mapping))


@router.get("/{key}", response_model=TemplateOut)
async def get_template(engine: Engine, key: str = TemplateKey):
    async with engine.connect() as conn:
        row = (await conn.execute(
            sa.select(*COLUMNS).where(Template.key == key))).first()
    if row is None:
        raise HTTPException(404, f"template {key!r} not found")
    return TemplateOut.model_validate(dict(row._mapping))
