
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema
from ninja.pagination import paginate

from etabli.core.api import Pagination
from etabli.core.errors import NotFound

from . import services
from .models import Operation, WorkshopKind
from .selectors import workshops_for

router = Router(tags=["workshops"])


class OperationOut(Schema):
    code: str
    name: str
    step: str


class ContactOut(Schema):
    name: str
    function: str
    email: str
    phone: str


class WorkshopOut(Schema):
    id: int
    code: str
    name: str
    kind: WorkshopKind
    capacity_benches: int
    address: str
    email: str
    phone: str
    is_active: bool
    skills: list[str]
    contacts: list[ContactOut]

    @staticmethod
    def resolve_skills(obj):
        return [op.code for op in obj.skills.all()]

    @staticmethod
    def resolve_contacts(obj):
        return list(obj.contacts.all())


class ContactIn(Schema):
    name: str = Field(min_length=1, max_length=120)
    function: str = Field("", max_length=80)
    email: str = Field("", max_length=254)
    phone: str = Field("", max_length=40)


class WorkshopIn(Schema):
    code: str = Field(min_length=1, max_length=30, pattern=r"^[a-zA-Z0-9_-]+$")
    name: str = Field(min_length=1, max_length=120)
    kind: WorkshopKind = WorkshopKind.EXTERNAL
    skills: list[str] = []
    capacity_benches: int = Field(1, ge=1, le=500)
    address: str = ""
    email: str = Field("", max_length=254)
    phone: str = Field("", max_length=40)
    contacts: list[ContactIn] = []


class WorkshopPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=120)
    capacity_benches: int | None = Field(None, ge=1, le=500)
    address: str | None = None
    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=40)
    is_active: bool | None = None
    skills: list[str] | None = None


@router.get("/operations", response=list[OperationOut], summary="Operations workshops do")
@paginate(Pagination)
def list_operations(request):
    return Operation.objects.order_by("position", "id")


@router.get("/workshops", response=list[WorkshopOut], summary="Workshops you may see")
@paginate(Pagination)
def list_workshops(request):
    return workshops_for(request.auth).order_by("name", "id")


@router.get("/workshops/{workshop_id}", response=WorkshopOut)
def get_workshop(request, workshop_id: int):
    ws = workshops_for(request.auth).filter(pk=workshop_id).first()
    if ws is None:
        raise NotFound(_("No workshop with id %(id)s.") % {"id": workshop_id})
    return ws


@router.post("/workshops", response={201: WorkshopOut}, summary="Add a workshop")
def create_workshop(request, payload: WorkshopIn):
    data = payload.dict()
    data["contacts"] = [c for c in data["contacts"]]
    return 201, services.workshop_create(actor=request.auth, **data)


@router.patch("/workshops/{workshop_id}", response=WorkshopOut, summary="Change a workshop")
def update_workshop(request, workshop_id: int, payload: WorkshopPatch):
    ws = workshops_for(request.auth).filter(pk=workshop_id).first()
    if ws is None:
        raise NotFound(_("No workshop with id %(id)s.") % {"id": workshop_id})
    return services.workshop_update(actor=request.auth, workshop=ws,
                                    **payload.dict(exclude_unset=True))
