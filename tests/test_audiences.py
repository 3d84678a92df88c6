"""Audiences: exact counts and samples over real datasets, materialization, and hostile conditions.

The profiles table is shared by the whole session, so every fixture tags its profiles with a
unique `cohort` attribute and conditions on profiles include it. Datasets have unique names.
The ASGI transport re-raises unhandled app exceptions, so any 500 fails the test that caused it.
"""

import json
import uuid
from datetime import date, datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from activities.audiences import drop_work_table, materialize
from activities.dataset_registry import load_registry

NOW = datetime.now(timezone.utc)
YEAR = NOW.year


def uid(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def ndjson(*rows: dict) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


async def ok(response, status: int = 200):
    assert response.status_code == status, response.text
    return response.json()


class World:
    """Profiles of one cohort, with hotels, bookings and orders declared and loaded via the API."""

    def __init__(self):
        self.cohort = uuid.uuid4().hex[:12]
        self.hotels, self.bookings, self.orders = uid("hotels"), uid("bookings"), uid("orders")

    def pid(self, n: int) -> str:
        return f"{self.cohort}-p{n}"

    @property
    def in_cohort(self) -> dict:
        return {"attr": "attributes.cohort", "op": "eq", "value": self.cohort}

    async def build(self, api) -> "World":
        await ok(await api.put(f"/v1/datasets/{self.hotels}", json={
            "primary_key": "hotel_id", "columns": {"hotel_id": "text", "city": "text"}}))
        await ok(await api.put(f"/v1/datasets/{self.bookings}", json={
            "primary_key": "booking_id",
            "columns": {"booking_id": "text", "profile_id": "text", "hotel_id": "text", "checkin": "date",
                        "amount": "numeric", "status": "text"},
            "links": {"profile": {"dataset": "profiles", "column": "profile_id"},
                      "hotel": {"dataset": self.hotels, "column": "hotel_id"}}}))
        await ok(await api.put(f"/v1/datasets/{self.orders}", json={
            "primary_key": "order_id", "columns": {"order_id": "integer", "profile_id": "text",
                                                   "ordered_at": "timestamptz"},
            "links": {"profile": {"dataset": "profiles", "column": "profile_id"}}}))
        countries = {1: "FR", 2: "FR", 3: "FR", 4: "FR", 5: "DE", 6: "FR", 7: "FR", 8: "fr", 9: "FR"}
        await ok(await api.post("/v1/profiles/bulk", json={"profiles": [
            {"id": self.pid(n), "attributes": {"country": c, "cohort": self.cohort}} for n, c in countries.items()]}))
        this_year, last_year = date(YEAR, 1, 1).isoformat(), date(YEAR - 1, 12, 31).isoformat()
        bookings = [  # (profile, checkin, status, hotel)
            (1, this_year, "confirmed", "h1"), (1, this_year, "confirmed", "h2"),
            (2, this_year, "confirmed", "h1"), (2, this_year, "confirmed", "h1"), (2, this_year, "confirmed", "h2"),
            (3, this_year, "confirmed", "h2"), (3, this_year, "confirmed", "h2"),
            (4, this_year, "confirmed", "h1"), (4, this_year, "cancelled", "h1"),
            (5, this_year, "confirmed", "h1"), (5, this_year, "confirmed", "h1"),
            (6, this_year, "confirmed", "h1"), (6, last_year, "confirmed", "h1"),
            (8, this_year, "confirmed", "h1"), (8, this_year, "confirmed", "h1"),
            (9, this_year, "confirmed", "h1"), (9, this_year, "confirmed", "h1"),
        ]
        csv_body = "booking_id,profile_id,hotel_id,checkin,amount,status\n" + "".join(
            f"{self.cohort}-b{i},{self.pid(p)},{h},{d},100,{s}\n" for i, (p, d, s, h) in enumerate(bookings))
        await ok(await api.post(f"/v1/datasets/{self.bookings}/rows", content=csv_body.encode(),
                                headers={"content-type": "text/csv"}))
        await ok(await api.post(f"/v1/datasets/{self.hotels}/rows", content=ndjson(
            {"hotel_id": "h1", "city": "Paris"}, {"hotel_id": "h2", "city": "Lyon"}),
            headers={"content-type": "application/x-ndjson"}))
        orders = [(2, 10), (3, 45), (9, 29)]  # (profile, days ago)
        await ok(await api.post(f"/v1/datasets/{self.orders}/rows", content=ndjson(*(
            {"order_id": i, "profile_id": self.pid(p), "ordered_at": (NOW - timedelta(days=d)).isoformat()}
            for i, (p, d) in enumerate(orders))), headers={"content-type": "application/x-ndjson"}))
        return self

    def french_loyal_no_recent_order(self) -> dict:
        """The issue's question: French profiles with >= 2 confirmed bookings this year and no
        order in the last 30 days."""
        return {"all": [
            self.in_cohort,
            {"attr": "attributes.country", "op": "eq", "value": "FR"},
            {"has": {"dataset": self.bookings,
                     "where": {"all": [{"attr": "status", "op": "eq", "value": "confirmed"},
                                       {"attr": "checkin", "op": "gte", "value": f"{YEAR}-01-01"}]},
                     "count": {"op": "gte", "value": 2}}},
            {"not": {"has": {"dataset": self.orders,
                             "where": {"attr": "ordered_at", "op": "within_last", "value": "P30D"}}}},
        ]}


@pytest.fixture(scope="module")
async def world(settings) -> World:
    from tests.conftest import api_client_for

    async for api in api_client_for(settings):
        return await World().build(api)


def state(db) -> tuple:
    """What an injection would change: tables, registry rows, audiences, profiles."""
    return (db.execute("SELECT count(*) FROM pg_tables WHERE schemaname IN ('public', 'work')").fetchone(),
            db.execute("SELECT count(*) FROM datasets").fetchone(),
            db.execute("SELECT count(*), max(updated_at) FROM audiences").fetchone(),
            db.execute("SELECT count(*), max(updated_at) FROM profiles").fetchone())


# --- counts -----------------------------------------------------------------------------------


async def test_issue_question_is_answered_exactly_with_a_sample(api, world):
    query = {"dimension": "profiles", "where": world.french_loyal_no_recent_order()}
    result = await ok(await api.post("/v1/audiences/count", json=query))
    assert result["count"] == 2
    assert sorted(row["id"] for row in result["sample"]) == [world.pid(1), world.pid(3)]
    assert result["sample"][0]["attributes"]["country"] == "FR"

    key = uid("french-loyal").replace("_", "-")
    saved = await ok(await api.put(f"/v1/audiences/{key}", json=query))
    assert saved["key"] == key and saved["where"] == query["where"]
    assert (await ok(await api.get(f"/v1/audiences/{key}")))["dimension"] == "profiles"
    assert (await ok(await api.post(f"/v1/audiences/{key}/count")))["count"] == 2
    assert (await api.get("/v1/audiences/nope-never-saved")).status_code == 404
    assert (await api.post("/v1/audiences/nope-never-saved/count")).status_code == 404


async def test_count_over_another_dimension_following_links(api, world):
    where = {"all": [{"attr": "hotel.city", "op": "eq", "value": "Lyon"},
                     {"attr": "profile.attributes.cohort", "op": "eq", "value": world.cohort}]}
    result = await ok(await api.post("/v1/audiences/count", json={"dimension": world.bookings, "where": where}))
    assert result["count"] == 4
    assert {row["hotel_id"] for row in result["sample"]} == {"h2"}
    assert {row["amount"] for row in result["sample"]} == {100}


async def test_sample_is_at_most_ten_rows(api):
    name = uid("items")
    await ok(await api.put(f"/v1/datasets/{name}", json={"primary_key": "id", "columns": {"id": "integer",
                                                                                          "even": "boolean"}}))
    await ok(await api.post(f"/v1/datasets/{name}/rows", content=ndjson(
        *({"id": i, "even": i % 2 == 0} for i in range(40))), headers={"content-type": "application/x-ndjson"}))
    result = await ok(await api.post("/v1/audiences/count", json={
        "dimension": name, "where": {"attr": "even", "op": "eq", "value": True}}))
    assert result["count"] == 20 and len(result["sample"]) == 10
    assert all(row["even"] is True for row in result["sample"])


async def test_materialize_writes_member_keys_into_a_work_table(engine, world, db):
    async with engine.connect() as conn:
        registry = await load_registry(conn)
    name, count = await materialize(engine, registry, "profiles", world.french_loyal_no_recent_order(), NOW)
    assert name.startswith("work.aud_") and count == 2
    schema, table = name.split(".")
    rows = db.execute(f'SELECT key FROM "{schema}"."{table}" ORDER BY key').fetchall()
    assert rows == [(world.pid(1),), (world.pid(3),)]
    assert db.execute("SELECT relpersistence FROM pg_class WHERE relname = %s", (table,)).fetchone() == ("u",)

    name2, count2 = await materialize(engine, registry, world.bookings,
                                      {"attr": "profile.attributes.cohort", "op": "eq", "value": world.cohort}, NOW)
    assert count2 == 17 == db.execute(f"SELECT count(*) FROM {name2}").fetchone()[0]

    await drop_work_table(engine, name)
    assert db.execute("SELECT to_regclass(%s)", (name,)).fetchone() == (None,)
    with pytest.raises(ValueError):
        await drop_work_table(engine, "public.profiles")
    await drop_work_table(engine, name2)


async def test_saved_audience_that_no_longer_fits_its_dataset_is_409(api):
    name = uid("things")
    await ok(await api.put(f"/v1/datasets/{name}", json={"primary_key": "id", "columns": {"id": "text", "x": "text"}}))
    key = uid("a").replace("_", "-")
    await ok(await api.put(f"/v1/audiences/{key}", json={"dimension": name,
                                                          "where": {"attr": "x", "op": "eq", "value": "1"}}))
    await ok(await api.put(f"/v1/datasets/{name}", json={"primary_key": "id", "columns": {"id": "text"}}))
    response = await api.post(f"/v1/audiences/{key}/count")
    assert response.status_code == 409 and response.json()["detail"][0]["path"] == "$.where.attr"


# --- validation and hostile input -------------------------------------------------------------


@pytest.mark.parametrize("query, expected", [
    ({"dimension": "nope_nope", "where": {"attr": "id", "op": "exists"}}, ["$.dimension"]),
    ({"dimension": "profiles", "where": {"attr": "nope", "op": "eq", "value": 1}}, ["$.where.attr"]),
    ({"dimension": "profiles", "where": {"all": [{"attr": "id", "op": "like", "value": "%"}]}}, ["$.where.all[0].op"]),
    ({"dimension": "profiles", "where": {"has": {"dataset": "nope_nope", "where": {"attr": "id", "op": "exists"}}}},
     ["$.where.has.dataset"]),
    ({"dimension": "profiles"}, ["$.where"]),
])
async def test_invalid_audiences_are_422_with_paths(api, db, query, expected):
    before = state(db)
    for response in (await api.post("/v1/audiences/count", json=query),
                     await api.put("/v1/audiences/invalid-one", json=query)):
        assert response.status_code == 422, response.text
        assert [item["path"] for item in response.json()["detail"]] == expected
    assert state(db) == before


INJECTIONS = ["x'; DROP TABLE profiles; --", 'x"; DROP TABLE profiles; --', "x) OR 1=1 --", "' OR ''='",
              "id; DELETE FROM datasets", "attributes'->>'x", "\\", "%", "_", "$.x", "../x", "attributes..x",
              "a\x00b", "ö", "pg_sleep(10)"]


@pytest.mark.parametrize("hostile", INJECTIONS)
async def test_injection_through_every_part_of_a_condition_fails_or_is_data(api, db, world, hostile):
    before = state(db)
    refused = [  # names: never SQL, refused with a 4xx
        {"dimension": hostile, "where": {"attr": "id", "op": "exists"}},
        {"dimension": "profiles", "where": {"attr": hostile, "op": "eq", "value": 1}},
        {"dimension": "profiles", "where": {"attr": f"email.{hostile}", "op": "eq", "value": 1}},
        {"dimension": world.bookings, "where": {"attr": f"hotel.{hostile}", "op": "eq", "value": 1}},
        {"dimension": "profiles", "where": {"attr": "id", "op": hostile, "value": 1}},
        {"dimension": "profiles", "where": {"has": {"dataset": hostile, "where": {"attr": "id", "op": "exists"}}}},
        {"dimension": "profiles", "where": {"has": {"dataset": world.bookings, "via": hostile,
                                                    "where": {"attr": "status", "op": "exists"}}}},
        {"dimension": "profiles", "where": {"has": {"dataset": world.bookings, "where": {"attr": "status", "op": "exists"},
                                                    "count": {"op": hostile, "value": 1}}}},
        {"dimension": "profiles", "where": {hostile: []}},
    ]
    for query in refused:
        response = await api.post("/v1/audiences/count", json=query)
        assert 400 <= response.status_code < 500, (query, response.text)
    # Values are data: bound parameters that simply match nothing.
    values = [{"attr": "email", "op": "eq", "value": hostile}, {"attr": "id", "op": "in", "value": [hostile, "x"]},
              {"attr": "id", "op": "contains", "value": hostile}, {"attr": "id", "op": "starts_with", "value": hostile}]
    # Keys inside jsonb are data too (bound), or refused when they are not a valid path.
    json_keys = [{"attr": f"attributes.{hostile}", "op": "exists"},
                 {"attr": f"attributes.{hostile}.x", "op": "eq", "value": hostile}]
    for leaf in values + json_keys:
        response = await api.post("/v1/audiences/count", json={"dimension": "profiles",
                                                               "where": {"all": [world.in_cohort, leaf]}})
        if "\x00" in hostile or (leaf in json_keys and response.status_code == 422):
            assert response.status_code == 422, response.text  # NUL: PostgreSQL text cannot hold it
        else:
            assert (await ok(response))["count"] == 0, leaf
    assert state(db) == before


@pytest.mark.parametrize("where", [None, [], "x", 1, {}, {"all": []}, {"all": {}}, {"not": []},
                                   {"attr": "id", "op": "eq", "value": {"$ne": 1}},
                                   {"attr": "id", "op": "eq", "value": 10**400},
                                   {"attr": "id", "op": "in", "value": "abc"},
                                   {"attr": "id", "op": "within_last", "value": "P1000000Y"},
                                   {"attr": "id", "op": "eq", "value": "x", "extra": 1},
                                   {"has": {"dataset": "profiles", "where": {"attr": "id", "op": "exists"}}}])
async def test_malformed_conditions_are_422_not_500(api, where):
    response = await api.post("/v1/audiences/count", json={"dimension": "profiles", "where": where})
    assert response.status_code == 422, response.text


async def test_deeply_nested_condition_is_refused(api):
    where: dict = {"attr": "id", "op": "exists"}
    for _ in range(200):
        where = {"not": where}
    response = await api.post("/v1/audiences/count", json={"dimension": "profiles", "where": where})
    assert response.status_code == 422


async def test_audience_key_is_validated(api, db):
    before = state(db)
    query = {"dimension": "profiles", "where": {"attr": "id", "op": "exists"}}
    for key in ["Bad Key", "x'--", "a" * 70, "-x"]:
        response = await api.put(f"/v1/audiences/{quote(key, safe='')}", json=query)
        assert response.status_code == 422, key
    assert state(db) == before


async def test_lone_surrogates_are_422_not_500(api, db):
    before = state(db)
    for method, url, body in [
        ("POST", "/v1/audiences/count", b'{"dimension":"profiles","where":{"attr":"email","op":"eq","value":"\\ud800"}}'),
        ("PUT", "/v1/audiences/surrogate", b'{"dimension":"profiles","where":{"attr":"attributes.\\udfff","op":"exists"}}'),
        ("PUT", "/v1/datasets/surrogate", b'{"primary_key":"id","columns":{"id":"text","\\ud800":"text"}}'),
        ("DELETE", "/v1/datasets/profiles/rows", b'{"keys":["\\ud800"]}'),
    ]:
        response = await api.request(method, url, content=body, headers={"content-type": "application/json"})
        assert response.status_code in (409, 422), (url, response.text)
    assert state(db) == before
