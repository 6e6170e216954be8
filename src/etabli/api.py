"""The /api/v1/ API: one NinjaAPI, one router per domain app."""


from ninja import NinjaAPI
from ninja.security.session import SessionAuth

from etabli import __version__
from etabli.core.api import TokenAuth, install_error_handlers

api = NinjaAPI(
    title="Établi API",
    version=__version__,
    description=(
        "Production management for jewelry houses and their workshops.\n\n"
        "Authenticate with `Authorization: Bearer <token>` (create one with `etabli token "
        "USERNAME` or `POST /api/v1/tokens`), or with a browser session plus the `X-CSRFToken` "
        "header. Errors are JSON: `{\"code\", \"message\", \"details\"}` with a 4xx status. "
        "Lists take `limit` and `offset` and return `{\"items\", \"count\"}`. Objects outside "
        "your scope answer 404."
    ),
    auth=[TokenAuth(), SessionAuth()],
    urls_namespace="api",
)
install_error_handlers(api)

from etabli.accounts.api import router as accounts_router  # noqa: E402
from etabli.clients.api import router as clients_router  # noqa: E402
from etabli.materials.api import metal_router, slips_router, stones_router  # noqa: E402
from etabli.materials.api import router as materials_router  # noqa: E402
from etabli.orders.api import router as orders_router  # noqa: E402
from etabli.production.api import router as pieces_router  # noqa: E402
from etabli.production.api import templates_router, transfers_router  # noqa: E402
from etabli.workshops.api import router as workshops_router  # noqa: E402

for r in (accounts_router, workshops_router, clients_router, materials_router, metal_router,
          slips_router, stones_router,
          templates_router, orders_router, pieces_router, transfers_router):
    api.add_router("", r)
api.add_router("", "etabli.materials.cad_api.router")  # CAD → weight
api.add_router("", "etabli.documents.api.router")  # documents, their versions and sharing
# The steps in depth: each step's app has its own router.
for _module in ("design", "stonesetting", "finishing", "quality", "shipping",
                "alerts", "notifications", "reports"):
    api.add_router("", f"etabli.{_module}.api.router")
