
from decimal import Decimal

from ninja import Router, Schema

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
def list_alloys(request):
    return list(Alloy.objects.all())
