"""Helpers to set up journeys, templates and profiles through the real API."""

import copy

CART_ABANDONMENT = {
    "key": "cart-abandonment",
    "name": "Cart abandonment",
    "entry": {"type": "event", "event": "cart_abandoned"},
    "exit": [{"event": "unsubscribed"}],
    "start": "wait",
    "nodes": {
        "wait": {"type": "wait", "duration": "PT2H", "next": "remind"},
        "remind": {"type": "message", "channel": "email", "template": "cart-reminder", "next": "bought"},
        "bought": {"type": "wait_event", "event": "order_placed", "timeout": "P3D",
                   "on_event": "thanks", "on_timeout": "end"},
        "thanks": {"type": "message", "channel": "email", "template": "thanks", "next": "end"},
        "end": {"type": "end"},
    },
}

TEMPLATES = {
    "cart-reminder": {"channel": "email", "subject": "{{ profile.attributes.first_name }}, your cart",
                      "body": "You left {{ event.properties.item }} in cart {{ event.properties.cart_id }}."},
    "thanks": {"channel": "email", "subject": "Thanks!", "body": "Order {{ event.properties.order_id }} confirmed."},
}


def journey(key: str, **changes) -> dict:
    definition = copy.deepcopy(CART_ABANDONMENT)
    definition["key"] = key
    definition.update(changes)
    return definition


async def publish_journey(api, definition: dict) -> int:
    for key, template in TEMPLATES.items():
        r = await api.put(f"/v1/templates/{key}", json=template)
        assert r.status_code == 200, r.text
    r = await api.post("/v1/journeys", json=definition)
    assert r.status_code == 201, r.text
    r = await api.post(f"/v1/journeys/{definition['key']}/publish")
    assert r.status_code == 200, r.text
    return r.json()["version"]
