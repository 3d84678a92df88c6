async def test_profile_roundtrip(api):
    r = await api.put("/v1/profiles/p1", json={"email": "a@example.com", "attributes": {"country": "FR"}})
    assert r.status_code == 200, r.text
    r = await api.put("/v1/profiles/p1", json={"attributes": {"vip": True}})
    assert r.json()["attributes"] == {"country": "FR", "vip": True}
    assert r.json()["email"] == "a@example.com"
