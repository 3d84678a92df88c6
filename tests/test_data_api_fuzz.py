"""No 500s from the data API: random JSON bodies and random bytes against datasets, rows and audiences.

Whatever arrives, the answer is a 2xx or a precise 4xx (the ASGI transport re-raises any
unhandled exception, so a 500 fails the example that caused it).
"""

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NAME = f"fuzz_{uuid.uuid4().hex[:10]}"
SCHEMA = {"primary_key": "id", "columns": {"id": "text", "n": "integer", "x": "numeric", "b": "boolean",
                                           "d": "date", "ts": "timestamptz", "j": "jsonb", "owner": "text"},
          "links": {"profile": {"dataset": "profiles", "column": "owner"}}}
NAMES = st.sampled_from(["id", "n", "x", "b", "d", "ts", "j", "owner", "profile", "profiles", NAME, "",
                         "attributes", "attributes.country", "profile.attributes.vip", "xmin", "Id", "a b"])
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
           | st.sampled_from(["2026-01-01", "2026-02-30", "2026-01-01T00:00:00Z", "P1D", "P999999Y", "eq",
                              "has", "text", "jsonb", "1e999", "-0", "true"]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(NAMES | st.text(max_size=6), inner, max_size=4), max_leaves=20)
CONDITION_KEYS = st.sampled_from(["all", "any", "not", "attr", "op", "value", "has", "dataset", "where",
                                  "count", "via"])
CONDITIONS = st.recursive(
    st.fixed_dictionaries({"attr": NAMES, "op": st.sampled_from(
        ["eq", "ne", "lt", "gte", "in", "not_in", "contains", "starts_with", "exists", "not_exists", "between",
         "before", "after", "within_last", "like"]), "value": JSON}),
    lambda inner: st.dictionaries(CONDITION_KEYS, inner | JSON | st.lists(inner, max_size=3), min_size=1,
                                  max_size=2)
    | st.fixed_dictionaries({"has": st.fixed_dictionaries({"dataset": st.sampled_from([NAME, "profiles", "x"]),
                                                           "where": inner}, optional={"count": JSON})}),
    max_leaves=8)
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module", autouse=True)
async def fuzz_dataset(settings):
    from tests.conftest import api_client_for

    async for api in api_client_for(settings):
        response = await api.put(f"/v1/datasets/{NAME}", json=SCHEMA)
        assert response.status_code == 200, response.text


@FUZZ
@given(body=st.dictionaries(st.sampled_from(["primary_key", "columns", "links", "extra"]), JSON, max_size=4))
async def test_dataset_declarations(api, body):
    response = await api.put(f"/v1/datasets/fz_{uuid.uuid4().hex[:8]}", json=body)
    assert response.status_code < 500


@FUZZ
@given(rows=st.lists(st.dictionaries(NAMES, JSON, max_size=5), max_size=5), raw=st.binary(max_size=80))
async def test_row_loads(api, rows, raw):
    import json

    ndjson = "".join(json.dumps(row) + "\n" for row in rows).encode()
    for body, content_type in [(ndjson, "application/x-ndjson"), (raw, "application/x-ndjson"), (raw, "text/csv"),
                               (b"id,n,j\n" + raw, "text/csv")]:
        response = await api.post(f"/v1/datasets/{NAME}/rows", content=body, headers={"content-type": content_type})
        assert response.status_code < 500
    response = await api.request("DELETE", f"/v1/datasets/{NAME}/rows", json={"keys": [r.get("id") for r in rows]})
    assert response.status_code < 500


@FUZZ
@given(dimension=st.sampled_from([NAME, "profiles", "nope"]), where=CONDITIONS | JSON)
async def test_audience_counts(api, dimension, where):
    response = await api.post("/v1/audiences/count", json={"dimension": dimension, "where": where})
    assert response.status_code < 500
