"""Every guarded page, including the ones with their own role check (campaigns, mission templates), sends a person
who has not accepted the current major terms to accept them first."""

from __future__ import annotations

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.legal.current import copy_of
from app.main import create_app
from app.settings import Settings
from tests.test_legal import ADMIN, only_version_one, publish
from tests.test_organisations import sign_in

__all__ = ["only_version_one"]

GUARDED = ("/administration/campagnes", "/administration/campagnes/nouvelle", "/modeles-missions",
           "/modeles-missions/nouveau", "/moderation/missions", "/mon-espace")


@pytest.mark.parametrize("path", GUARDED)
async def test_an_admin_with_old_terms_is_sent_to_accept_before_any_guarded_page(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, settings: Settings, path: str
) -> None:
    await sign_in(client, redis, db, ADMIN, admin=True)
    async with AsyncTestClient(app=create_app(settings)) as other:
        await sign_in(other, redis, db, "autre.admin@example.org", admin=True)
        assert (await other.get(path, follow_redirects=False)).status_code == 200
        major = await publish(client, "terms", title="Conditions d'utilisation et chartes",
                              body="## Nouveau\n\nVersion majeure.", major="1")
        assert major.status_code == 303
        copy_of(other.app.state.web.redis).forget()  # what the other web process sees within a second
        response = await other.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/conditions-utilisation/accepter?suite=")
