"""The public unsubscribe page behind `{{ unsubscribe_url }}` and List-Unsubscribe headers.

GET shows a confirmation page (link scanners and prefetchers follow GETs, so a GET must never
unsubscribe); its button POSTs to the same URL. POST records the opt-out: from the page, or
as an RFC 8058 one-click request sent by the mail provider (`List-Unsubscribe=One-Click`).
No API key: the signed token is the authorisation.
"""

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.deps import AppSettings, Engine
from api.routes.subscriptions import record_subscriptions
from models.delivery_tables import ALL_TOPICS
from models.unsubscribe_tokens import InvalidToken, UnsubscribeScope, verify

router = APIRouter(prefix="/unsubscribe", tags=["unsubscribe"])

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 32rem; margin: 4rem auto;">
<h1>{title}</h1>
{content}
</body></html>"""


def _what(scope: UnsubscribeScope) -> str:
    if scope.topic == ALL_TOPICS:
        return f"all marketing messages by {escape(scope.channel)}"
    return f"“{escape(scope.topic)}” messages by {escape(scope.channel)}"


def _page(title: str, content: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(PAGE.format(title=escape(title), content=content), status_code=status_code,
                        headers={"Cache-Control": "no-store"})


def _invalid() -> HTMLResponse:
    return _page("Link not valid", "<p>This unsubscribe link is not valid. Please use the link from the "
                                   "latest message you received.</p>", status_code=404)


@router.get("/{token}", response_class=HTMLResponse)
async def confirm_page(token: str, settings: AppSettings) -> HTMLResponse:
    try:
        scope = verify(settings.unsubscribe_secret, token)
    except InvalidToken:
        return _invalid()
    return _page("Unsubscribe", f"""<p>Stop receiving {_what(scope)}?</p>
<form method="post"><button type="submit">Unsubscribe</button></form>""")


@router.post("/{token}", response_class=HTMLResponse)
async def unsubscribe(token: str, request: Request, settings: AppSettings, engine: Engine) -> HTMLResponse:
    try:
        scope = verify(settings.unsubscribe_secret, token)
    except InvalidToken:
        return _invalid()
    one_click = b"List-Unsubscribe=One-Click" in await request.body()
    async with engine.begin() as conn:
        await record_subscriptions(conn, scope.profile_id, [(scope.channel, scope.topic, "opted_out")],
                                   "one_click" if one_click else "unsubscribe_link")
    return _page("Unsubscribed", f"<p>Done: you will no longer receive {_what(scope)}.</p>")
