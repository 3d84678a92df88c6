"""Datasets: declaration and migration, bulk loads (CSV, JSON lines), deletes, and hostile input.

Every test declares datasets with unique names: the database is shared by the whole session.
The ASGI transport re-raises unhandled app exceptions, so any 500 fails the test that caused it.
"""

import json
import uuid
from decimal import Decimal
from urllib.parse import quote

import pytest

BOOKING_COLUMNS = {"booking_id": "text", "profile_id": "text", "hotel_id": "text", "checkin": "date",
                   "amount": "numeric", "status": "text"}


def uid(prefix: str = "ds") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def ndjson(*rows: dict) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


async def put_dataset(api, name: str, body: dict, status: int = 200):
    response = await api.put(f"/v1/datasets/{name}", json=body)
    assert response.status_code == status, response.text
    return response.json()


async def declare_hotels_and_bookings(api) -> tuple[str, str]:
    hotels, bookings = uid("hotels"), uid("bookings")
    await put_dataset(api, hotels, {"primary_key": "hotel_id",
                                    "columns": {"hotel_id": "text", "city": "text", "stars": "integer"}})
    await put_dataset(api, bookings, {
        "primary_key": "booking_id", "columns": BOOKING_COLUMNS,
        "links": {"profile": {"dataset": "profiles", "column": "profile_id"},
                  "hotel": {"dataset": hotels, "column": "hotel_id"}}})
    return hotels, bookings


async def load(api, name: str, body: bytes, content_type: str = "application/x-ndjson"):
    return await api.post(f"/v1/datasets/{name}/rows", content=body, headers={"content-type": content_type})


def table_rows(db, name: str) -> list[tuple]:
    return db.execute(f'SELECT * FROM "ds_{name}" ORDER BY 1').fetchall()


def table_columns(db, name: str) -> dict[str, str]:
    rows = db.execute("SELECT column_name, data_type FROM information_schema.columns "
                      "WHERE table_name = %s", (f"ds_{name}",)).fetchall()
    return dict(rows)


def paths(response) -> list[str]:
    assert response.status_code == 422, response.text
    return [item["path"] for item in response.json()["detail"]]


# --- declaration ------------------------------------------------------------------------------


async def test_declare_creates_table_with_primary_key_and_link_indexes(api, db):
    hotels, bookings = await declare_hotels_and_bookings(api)
    assert table_columns(db, bookings) == {"booking_id": "text", "profile_id": "text", "hotel_id": "text",
                                           "checkin": "date", "amount": "numeric", "status": "text"}
    indexes = {row[0] for row in db.execute(
        "SELECT indexdef FROM pg_indexes WHERE tablename = %s", (f"ds_{bookings}",))}
    assert any("UNIQUE" in d and "(booking_id)" in d for d in indexes)
    assert any("(profile_id)" in d for d in indexes) and any("(hotel_id)" in d for d in indexes)

    listed = (await api.get("/v1/datasets")).json()["datasets"]
    assert {"profiles", hotels, bookings} <= {d["name"] for d in listed}
    got = (await api.get(f"/v1/datasets/{bookings}")).json()
    assert got["primary_key"] == "booking_id" and got["row_count"] == 0
    assert got["links"]["hotel"] == {"dataset": hotels, "column": "hotel_id"}
    profiles = (await api.get("/v1/datasets/profiles")).json()
    assert profiles["builtin"] and profiles["columns"]["attributes"] == "jsonb"
    assert (await api.get(f"/v1/datasets/{uid()}")).status_code == 404


async def test_redeclare_adds_columns_and_drops_empty_ones(api, db):
    name = uid()
    base = {"primary_key": "id", "columns": {"id": "text", "a": "integer", "b": "text"}}
    assert (await put_dataset(api, name, base))["created"]
    assert (await load(api, name, ndjson({"id": "1", "a": 5}))).status_code == 200
    again = await put_dataset(api, name, {"primary_key": "id", "columns": {"id": "text", "a": "integer",
                                                                          "c": "jsonb"}})
    assert not again["created"] and again["added_columns"] == ["c"] and again["dropped_columns"] == ["b"]
    assert table_columns(db, name) == {"id": "text", "a": "bigint", "c": "jsonb"}
    assert table_rows(db, name) == [("1", 5, None)]
    # Same declaration again: nothing to do, still fine.
    assert (await put_dataset(api, name, {"primary_key": "id", "columns": {"id": "text", "a": "integer",
                                                                          "c": "jsonb"}}))["added_columns"] == []


async def test_adding_a_link_on_an_existing_column_indexes_it(api, db):
    name = uid()
    await put_dataset(api, name, {"primary_key": "id", "columns": {"id": "text", "owner": "text"}})
    await put_dataset(api, name, {"primary_key": "id", "columns": {"id": "text", "owner": "text"},
                                  "links": {"profile": {"dataset": "profiles", "column": "owner"}}})
    indexes = [row[0] for row in db.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", (f"ds_{name}",))]
    assert any("(owner)" in d for d in indexes)


@pytest.mark.parametrize("change, path", [
    ({"primary_key": "id", "columns": {"id": "text", "a": "text", "b": "text"}}, "$.columns.a"),
    ({"primary_key": "id", "columns": {"id": "text", "b": "text"}}, "$.columns.a"),
    ({"primary_key": "b", "columns": {"id": "text", "a": "integer", "b": "text"}}, "$.primary_key"),
])
async def test_changes_that_would_lose_data_are_409_and_change_nothing(api, db, change, path):
    name = uid()
    await put_dataset(api, name, {"primary_key": "id", "columns": {"id": "text", "a": "integer", "b": "text"}})
    assert (await load(api, name, ndjson({"id": "1", "a": 5, "b": "x"}))).status_code == 200
    response = await api.put(f"/v1/datasets/{name}", json=change)
    assert response.status_code == 409, response.text
    assert path in [item["path"] for item in response.json()["detail"]]
    assert table_columns(db, name) == {"id": "text", "a": "bigint", "b": "text"}
    assert table_rows(db, name) == [("1", 5, "x")]
    assert (await api.get(f"/v1/datasets/{name}")).json()["columns"] == {"id": "text", "a": "integer", "b": "text"}


async def test_profiles_is_built_in(api, db):
    response = await api.put("/v1/datasets/profiles", json={"primary_key": "id", "columns": {"id": "text"}})
    assert response.status_code == 409
    assert table_columns(db, "x") == {}  # nothing named ds_* appeared for it either


@pytest.mark.parametrize("body, expected", [
    ({"primary_key": "nope", "columns": {"id": "text"}}, ["$.primary_key"]),
    ({"primary_key": "id", "columns": {"id": "float"}}, ["$.columns.id", "$.primary_key"]),
    ({"primary_key": "id", "columns": {"id": "jsonb"}}, ["$.primary_key"]),
    ({"primary_key": "id", "columns": {"id": "text", "Bad": "text"}}, ["$.columns.Bad"]),
    ({"primary_key": "id", "columns": {"id": "text", "xmin": "text"}}, ["$.columns.xmin"]),
    ({"primary_key": "id", "columns": {"id": "text"}, "links": {"l": {"dataset": "nope_x", "column": "id"}}},
     ["$.links.l.dataset"]),
    ({"primary_key": "id", "columns": {"id": "text"}, "links": {"l": {"dataset": "profiles", "column": "x"}}},
     ["$.links.l.column"]),
    ({"primary_key": "id", "columns": {"id": "integer", "p": "integer"},
      "links": {"l": {"dataset": "profiles", "column": "p"}}}, ["$.links.l.column"]),
    ({"primary_key": "id", "columns": {"id": "text", "p": "text"},
      "links": {"p": {"dataset": "profiles", "column": "p"}}}, ["$.links.p"]),
])
async def test_invalid_declarations_are_422_with_paths(api, db, body, expected):
    name = uid()
    assert paths(await api.put(f"/v1/datasets/{name}", json=body)) == expected
    assert table_columns(db, name) == {}
    assert (await api.get(f"/v1/datasets/{name}")).status_code == 404


async def test_self_link_is_allowed(api):
    name = uid("employees")
    await put_dataset(api, name, {"primary_key": "id", "columns": {"id": "integer", "manager_id": "integer"},
                                  "links": {"manager": {"dataset": name, "column": "manager_id"}}})


# --- hostile names ----------------------------------------------------------------------------

HOSTILE = ['x"; DROP TABLE profiles; --', "x'); DELETE FROM datasets; --", "ds_x.profiles", "X", "a b",
           "a" * 49, "é", "a\x00b", "1abc", "", "profiles\"--", "a-b"]


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_hostile_identifiers_are_refused_and_change_nothing(api, db, hostile):
    before = db.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    registry_before = db.execute("SELECT count(*) FROM datasets").fetchone()
    name = uid()
    attempts = [
        api.put(f"/v1/datasets/{quote(hostile, safe='')}", json={"primary_key": "id", "columns": {"id": "text"}}),
        api.put(f"/v1/datasets/{name}", json={"primary_key": hostile, "columns": {hostile: "text"}}),
        api.put(f"/v1/datasets/{name}", json={"primary_key": "id", "columns": {"id": "text", "c": hostile}}),
        api.put(f"/v1/datasets/{name}", json={"primary_key": "id", "columns": {"id": "text"},
                                              "links": {hostile: {"dataset": "profiles", "column": "id"}}}),
        api.put(f"/v1/datasets/{name}", json={"primary_key": "id", "columns": {"id": "text"},
                                              "links": {"l": {"dataset": hostile, "column": "id"}}}),
        api.put(f"/v1/datasets/{name}", json={"primary_key": "id", "columns": {"id": "text"},
                                              "links": {"l": {"dataset": "profiles", "column": hostile}}}),
    ]
    for attempt in attempts:
        response = await attempt
        # (an empty name is `PUT /v1/datasets/`: a redirect to the collection, which has no PUT)
        assert 300 <= response.status_code < 500, (hostile, response.text)
    assert db.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == before
    assert db.execute("SELECT count(*) FROM datasets").fetchone() == registry_before
    assert db.execute("SELECT count(*) FROM profiles").fetchone() is not None  # still there


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_hostile_names_in_rows_are_refused(api, db, hostile):
    name = uid()
    await put_dataset(api, name, {"primary_key": "id", "columns": {"id": "text", "v": "text"}})
    for body, content_type in [(ndjson({"id": "1", hostile: "x"}), "application/x-ndjson"),
                               (f'id,"{hostile}"\n1,x\n'.encode(), "text/csv")]:
        response = await load(api, name, body, content_type)
        assert response.status_code in (404, 422), response.text
    assert (await load(api, quote(hostile, safe=""), ndjson({"id": "1"}))).status_code in (404, 422)
    assert table_rows(db, name) == []


async def test_hostile_values_are_stored_as_data(api, db):
    name = uid()
    await put_dataset(api, name, {"primary_key": "id", "columns": {"id": "text", "v": "text", "j": "jsonb"}})
    evil = "'); DROP TABLE profiles; --\t\\N\n\r\\."
    response = await load(api, name, ndjson({"id": evil, "v": evil, "j": {evil: [evil]}}))
    assert response.status_code == 200, response.text
    assert table_rows(db, name) == [(evil, evil, {evil: [evil]})]
    csv_body = ('id,v\n"' + evil.replace('"', '""') + '2","' + evil + '"\n').encode()
    assert (await load(api, name, csv_body, "text/csv")).status_code == 200
    assert (evil + "2", evil, None) in table_rows(db, name)


# --- bulk load --------------------------------------------------------------------------------


async def test_csv_load_upserts_by_primary_key(api, db):
    _, bookings = await declare_hotels_and_bookings(api)
    csv_body = ("booking_id,profile_id,hotel_id,checkin,amount,status\n"
                "b1,p1,h1,2026-03-01,120.50,confirmed\n"
                "b2,p1,h2,2026-04-01,,cancelled\n"
                '"b3","p2","h1","2026-05-01","99.999999999999999999","con,firmed"\n').encode()
    response = await load(api, bookings, csv_body, "text/csv")
    assert response.json() == {"upserted": 3}
    rows = {r[0]: r for r in table_rows(db, bookings)}
    assert str(rows["b3"][4]) == "99.999999999999999999" and rows["b3"][5] == "con,firmed"
    assert rows["b2"][4] is None
    # Upsert: b1 changes status only (a column the batch omits keeps its value).
    response = await load(api, bookings, b"booking_id,status\nb1,cancelled\nb4,confirmed\n", "text/csv")
    assert response.json() == {"upserted": 2}
    rows = {r[0]: r for r in table_rows(db, bookings)}
    assert rows["b1"][1:] == ("p1", "h1", rows["b1"][3], rows["b1"][4], "cancelled")
    assert rows["b4"][5] == "confirmed" and len(rows) == 4
    assert (await api.get(f"/v1/datasets/{bookings}")).json()["row_count"] == 4


async def test_ndjson_load_all_types(api, db):
    name = uid()
    await put_dataset(api, name, {"primary_key": "id", "columns": {
        "id": "integer", "t": "text", "n": "numeric", "b": "boolean", "d": "date", "ts": "timestamptz",
        "j": "jsonb"}})
    body = (b'{"id": 1, "t": "caf\\u00e9 \xf0\x9f\x8f\xa8", "n": 0.1, "b": true, "d": "2026-01-31", '
            b'"ts": "2026-01-31T10:00:00+01:00", "j": {"a": [1, 2.50, null]}}\n'
            b'\n'
            b'{"id": 2, "n": 12345678901234567890.123456789}\n'
            b'{"id": 1, "t": "last wins"}\n')
    response = await load(api, name, body)
    assert response.json() == {"upserted": 2}, response.text
    rows = table_rows(db, name)
    # A key twice in one batch: the last line wins whole (columns it omits are null).
    assert rows[0] == (1, "last wins", None, None, None, None, None)
    assert str(rows[1][2]) == "12345678901234567890.123456789"
    response = await load(api, name, body.rsplit(b"\n", 2)[0])  # without the last line
    first = table_rows(db, name)[0]
    assert first[1:4] == ("caf\u00e9 \U0001f3e8", Decimal("0.1"), True) and first[6] == {"a": [1, 2.5, None]}
    assert first[5].isoformat() == "2026-01-31T09:00:00+00:00"


async def test_type_errors_are_reported_by_line_and_column_and_nothing_is_loaded(api, db):
    name = uid()
    await put_dataset(api, name, {"primary_key": "id", "columns": {
        "id": "text", "n": "integer", "d": "date", "ts": "timestamptz", "b": "boolean", "x": "numeric"}})
    csv_body = ("id,n,d,ts,b,x\n"
                "ok,1,2026-01-01,2026-01-01T00:00:00Z,true,1.5\n"
                "bad1,one,2026-02-30,2026-01-01T00:00:00,maybe,NaN\n"
                ",9223372036854775808,,,,\n"
                "short,1\n").encode()
    response = await load(api, name, csv_body, "text/csv")
    assert response.status_code == 422, response.text
    errors = {(e["line"], e["column"]) for e in response.json()["detail"]}
    assert errors == {(3, "n"), (3, "d"), (3, "ts"), (3, "b"), (3, "x"), (4, "n"), (4, "id"), (5, None)}
    assert all(e["reason"] for e in response.json()["detail"])
    assert table_rows(db, name) == []

    body = ndjson({"id": "a", "n": 1}, {"id": "b", "n": "1"}, {"id": "c", "n": True}, {"n": 2},
                  {"id": "d", "n": 1.5}, {"id": "e", "zzz": 1}) + b"[1]\n{not json\n"
    response = await load(api, name, body)
    errors = [(e["line"], e["column"]) for e in response.json()["detail"]]
    assert errors == [(2, "n"), (3, "n"), (4, "id"), (5, "n"), (6, "zzz"), (7, None), (8, None)]
    assert table_rows(db, name) == []


async def test_unstorable_values_are_row_errors_not_500s(api, db):
    name = uid()
    await put_dataset(api, name, {"primary_key": "id", "columns": {"id": "text", "j": "jsonb", "n": "numeric"}})
    bodies = [b'{"id": "a\\u0000"}\n', b'{"id": "\\ud800"}\n', b'{"id": "a", "j": {"k\\u0000": 1}}\n',
              b'{"id": "a", "n": NaN}\n', b'{"id": "a", "n": 1e999999}\n', b'{"id": "a", "j": Infinity}\n',
              b'{"id": "\xff"}\n', b'{"id": "a", "n": "1e-99999"}\n', b'{"id": "a", "\\udc00": 1}\n',
              b'{"id": "a", "n": "\\ud800"}\n']
    for body in bodies:
        response = await load(api, name, body)
        assert response.status_code == 422, (body, response.text)
    response = await load(api, name, b'id,j\n"a\x00",1\nb,{"x":\n', "text/csv")
    assert response.status_code == 422
    assert table_rows(db, name) == []


async def test_many_errors_are_capped(api, db):
    name = uid()
    await put_dataset(api, name, {"primary_key": "id", "columns": {"id": "text", "n": "integer"}})
    body = ndjson(*({"id": str(i), "n": "x"} for i in range(500)))
    response = await load(api, name, body)
    assert response.status_code == 422
    assert len(response.json()["detail"]) == 100 and response.json()["truncated"] is True


async def test_load_needs_a_known_dataset_and_content_type(api):
    assert (await load(api, uid(), ndjson({"id": "1"}))).status_code == 404
    name = uid()
    await put_dataset(api, name, {"primary_key": "id", "columns": {"id": "text"}})
    assert (await load(api, name, b"{}", "application/json")).status_code == 415
    assert (await load(api, name, b"", "text/csv")).status_code == 422


async def test_delete_rows_by_key(api, db):
    name = uid()
    await put_dataset(api, name, {"primary_key": "id", "columns": {"id": "integer", "v": "text"}})
    await load(api, name, ndjson({"id": 1}, {"id": 2}, {"id": 3}))
    response = await api.request("DELETE", f"/v1/datasets/{name}/rows", json={"keys": [1, 3, 99]})
    assert response.json() == {"deleted": 2}
    assert table_rows(db, name) == [(2, None)]
    response = await api.request("DELETE", f"/v1/datasets/{name}/rows", json={"keys": [2, "2; DROP TABLE x"]})
    assert paths(response) == ["$.keys[1]"]
    assert table_rows(db, name) == [(2, None)]


async def test_profiles_load_through_rows(api, db):
    a, b = f"p-{uuid.uuid4().hex[:8]}", f"p-{uuid.uuid4().hex[:8]}"
    body = (f'id,email,attributes\n{a},{a}@example.com,"{{""country"": ""FR""}}"\n{b},,\n').encode()
    assert (await load(api, "profiles", body, "text/csv")).json() == {"upserted": 2}
    response = await load(api, "profiles", ndjson({"id": a, "attributes": {"vip": True}}))
    assert response.json() == {"upserted": 1}
    profile = (await api.get(f"/v1/profiles/{a}")).json()
    assert profile["attributes"] == {"country": "FR", "vip": True} and profile["email"] == f"{a}@example.com"
    response = await load(api, "profiles", ndjson({"id": "x y"}, {"id": a, "email": "nope"},
                                                  {"id": a, "attributes": [1]}, {"id": a, "created_at": "x"}))
    assert [(e["line"], e["column"]) for e in response.json()["detail"]] == [
        (1, "id"), (2, "email"), (3, "attributes"), (4, "created_at")]
