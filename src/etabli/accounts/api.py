"""Who am I, API tokens, users."""


import datetime as dt

from django.utils.translation import gettext as _
from ninja import Field, Router, Schema
from ninja.pagination import paginate

from etabli.core.api import Pagination
from etabli.core.errors import NotFound, PermissionDenied
from etabli.core.schemas import ClientRef, WorkshopRef

from . import services
from .models import ApiToken, Role, User

router = Router(tags=["accounts"])


class MeOut(Schema):
    id: int
    username: str
    first_name: str
    last_name: str
    email: str
    role: Role
    role_label: str
    language: str
    workshops: list[WorkshopRef]
    client: ClientRef | None

    @staticmethod
    def resolve_role_label(obj):
        return str(Role(obj.role).label)

    @staticmethod
    def resolve_workshops(obj):
        return list(obj.workshops.all())


class TokenOut(Schema):
    id: int
    name: str
    prefix: str
    user: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @staticmethod
    def resolve_user(obj):
        return obj.user.username


class TokenCreatedOut(TokenOut):
    key: str = Field(description="The token itself. Shown only this once: keep it safe.")


class TokenIn(Schema):
    name: str = Field("api", min_length=1, max_length=80)
    username: str | None = Field(None, description="Admin only: create it for another user")


class UserIn(Schema):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=8, max_length=200)
    role: Role
    email: str = Field("", max_length=254)
    first_name: str = Field("", max_length=150)
    last_name: str = Field("", max_length=150)
    workshops: list[str] = Field(default_factory=list, description="Workshop codes")
    client: str | None = Field(None, description="Client code (client contacts)")
    language: str = Field("en", pattern="^(en|fr)$")


@router.get("/me", response=MeOut, summary="The user behind this request")
def me(request):
    return request.auth


@router.get("/tokens", response=list[TokenOut], summary="API tokens (yours; all for admins)")
@paginate(Pagination)
def list_tokens(request):
    qs = ApiToken.objects.select_related("user")
    if request.auth.role != Role.ADMIN:
        qs = qs.filter(user=request.auth)
    return qs.order_by("-created_at", "-id")


@router.post("/tokens", response={201: TokenCreatedOut}, summary="Create an API token")
def create_token(request, payload: TokenIn):
    user = request.auth
    if payload.username and payload.username != user.username:
        if user.role != Role.ADMIN:
            raise PermissionDenied(
                _("Only an administrator can create tokens for someone else."))
        user = User.objects.filter(username=payload.username).first()
        if user is None:
            raise NotFound(_("No user '%(username)s'.") % {"username": payload.username},
                           details={"field": "username"})
    token, raw = services.token_create(actor=request.auth, user=user, name=payload.name)
    token.key = raw
    return 201, token


@router.delete("/tokens/{token_id}", response=TokenOut, summary="Revoke an API token")
def revoke_token(request, token_id: int):
    return services.token_revoke(actor=request.auth, token_id=token_id)


@router.post("/users", response={201: MeOut}, summary="Create a user (admin)")
def create_user(request, payload: UserIn):
    user = services.user_create(
        actor=request.auth, username=payload.username, password=payload.password,
        role=payload.role, email=payload.email, first_name=payload.first_name,
        last_name=payload.last_name, workshop_codes=payload.workshops or None,
        client_code=payload.client, language=payload.language)
    return 201, user
