"""The newcomer's path: a binary-mode query in, a binary-mode reply out."""

from __future__ import annotations

import httpx

from tests.helpers.support import RESPONSE, binary_headers, dumps, query


async def test_binary_query_gets_binary_reply(client: httpx.AsyncClient) -> None:
    """A binary-mode query is answered 200 with the reply event in binary mode."""
    response = await client.post("/", headers=binary_headers(), content=dumps(query("hi")))
    assert response.status_code == 200
    assert response.headers["ce-type"] == RESPONSE
    assert response.json()["result"] == {"message": "Processed query: hi"}
