from tests.support.rdfcheck import assert_same_triples


async def test_view_is_valid(client):
    resp = await client.get("/parking/view")
    assert resp.status == 200
    body = await resp.read()
    g = assert_same_triples(body)
    assert len(g) > 10
