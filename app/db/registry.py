"""Imports every model module so that the metadata Alembic compares against is complete."""

from app.accounts import models as account_models  # noqa: F401
from app.applications import models as application_models  # noqa: F401
from app.campaigns import models as campaign_models  # noqa: F401
from app.db.base import Base
from app.geo import models as geo_models  # noqa: F401
from app.legal import models as legal_models  # noqa: F401
from app.missions import models as mission_models  # noqa: F401
from app.organisations import models as organisation_models  # noqa: F401
from app.partners import models as partner_models  # noqa: F401
from app.switches import models as switch_models  # noqa: F401
from app.territories import models as territory_models  # noqa: F401
from app.volunteers import models as volunteer_models  # noqa: F401
from app.youth import models as youth_models  # noqa: F401
from surge.dispatch import models as dispatch_models  # noqa: F401
from surge.emergencies import models as emergency_models  # noqa: F401

metadata = Base.metadata
