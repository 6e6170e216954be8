
from decimal import Decimal

from ninja import Router, Schema
from ninja.pagination import paginate

from etabli.core.api import Pagination

from .models import Alloy

router = Router(tags=["materials"])


class AlloyOut(Schema):
    code: str
    name: str
    metal: str
    fineness_permille: int
    colour: str
    density_g_cm3: Decimal


@router.get("/alloys", response=list[AlloyOut], summary="Alloys (metal, fineness, density)")
@paginate(Pagination)
def list_alloys(request):
    return Alloy.objects.order_by("metal", "-fineness_permille", "code")
