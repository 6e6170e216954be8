
import datetime as dt

from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate

from etabli.core.api import Pagination
from etabli.core.errors import NotFound

from . import services
from .models import Channel, Client, ClientKind

router = Router(tags=["clients"])


class ContactOut(Schema):
    name: str
    function: str
    email: str
    phone: str


class ClientOut(Schema):
    id: int
    code: str
    name: str
    kind: ClientKind
    channel: Channel
    email: str
    phone: str
    address: str
    language: str
    created_at: dt.datetime
    contacts: list[ContactOut]

    @staticmethod
    def resolve_contacts(obj):
        return list(obj.contacts.all())


class ContactIn(Schema):
    name: str = Field(min_length=1, max_length=120)
    function: str = Field("", max_length=80)
    email: str = Field("", max_length=254)
    phone: str = Field("", max_length=40)


class ClientIn(Schema):
    code: str = Field(min_length=1, max_length=30, pattern=r"^[a-zA-Z0-9_-]+$")
    name: str = Field(min_length=1, max_length=160)
    kind: ClientKind = ClientKind.B2B
    channel: Channel = Channel.DIRECT
    email: str = Field("", max_length=254)
    phone: str = Field("", max_length=40)
    address: str = ""
    language: str = Field("en", pattern="^(en|fr)$")
    contacts: list[ContactIn] = []


class ClientFilters(Schema):
    q: str | None = None
    channel: Channel | None = None
    kind: ClientKind | None = None


@router.get("/clients", response=list[ClientOut], summary="Clients you may see")
@paginate(Pagination)
def list_clients(request, filters: Query[ClientFilters]):
    qs = Client.objects.visible_to(request.auth).prefetch_related("contacts")
    if filters.q:
        qs = qs.filter(name__icontains=filters.q.strip())
    if filters.channel:
        qs = qs.filter(channel=filters.channel)
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    return qs.order_by("name", "id")


@router.get("/clients/{client_id}", response=ClientOut)
def get_client(request, client_id: int):
    client = Client.objects.visible_to(request.auth).filter(pk=client_id).first()
    if client is None:
        raise NotFound(_("No client with id %(id)s.") % {"id": client_id})
    return client


@router.post("/clients", response={201: ClientOut}, summary="Add a client")
def create_client(request, payload: ClientIn):
    return 201, services.client_create(actor=request.auth, **payload.dict())
