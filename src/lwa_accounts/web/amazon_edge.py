"""Edge helpers shared by the Amazon pages and API (and the TV endpoints).

Talking to Amazon happens here, outside any database transaction: a slow or failing Amazon
holds no lock and leaves nothing half-written (security.md item 3). Refused tokens (another
app's, expired, unknown) are audited in a transaction of their own and then re-raised.
"""

from __future__ import annotations

from lwa_accounts.core.models import AmazonProfile
from lwa_accounts.errors import AmazonError, AmazonUnavailable
from lwa_accounts.flows.amazon import audit_refused_token
from lwa_accounts.flows.context import Context
from lwa_accounts.lwa.client import LwaClient
from lwa_accounts.web.services import Services


def amazon_client(services: Services) -> LwaClient:
    if services.amazon is None:  # pragma: no cover - the lifespan always sets it
        raise AmazonUnavailable("Login with Amazon is not configured.")
    return services.amazon


async def verify_token(ctx: Context, services: Services, access_token: str) -> AmazonProfile:
    """The verified profile behind ``access_token`` (aud in the allow-list), or raise.

    AmazonUnavailable (503, Retry-After) writes nothing; every other refusal is audited.
    """
    try:
        return await amazon_client(services).verify_and_fetch(access_token)
    except AmazonUnavailable:
        raise
    except AmazonError as error:
        async with ctx.transaction() as tx:
            audit_refused_token(tx, error)
        raise
