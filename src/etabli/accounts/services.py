from __future__ import annotations

import secrets

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from etabli.core import audit
from etabli.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

from .models import ApiToken, Role, User, hash_token

TOKEN_PREFIX = "etb_"


@transaction.atomic
def user_create(*, actor: User | None, username: str, password: str, role: str,
                email: str = "", first_name: str = "", last_name: str = "",
                workshop_codes: list[str] | None = None, client_code: str | None = None,
                language: str = "en", check_password: bool = True) -> User:
    from etabli.clients.models import Client
    from etabli.workshops.models import Workshop

    if actor is not None and not (actor.is_active and actor.role == Role.ADMIN):
        raise PermissionDenied(_("Only an administrator can create users."))
    username = (username or "").strip()
    if not username:
        raise ValidationFailed(_("A username is required."), details={"field": "username"})
    if role not in Role.values:
        raise ValidationFailed(
            _("Unknown role '%(role)s'. Choose one of: %(choices)s.")
            % {"role": role, "choices": ", ".join(Role.values)},
            details={"field": "role"},
        )
    if User.objects.filter(username__iexact=username).exists():
        raise Conflict(_("A user named '%(username)s' already exists.") % {"username": username},
                       details={"field": "username"})
    if check_password:
        try:
            validate_password(password)
        except DjangoValidationError as exc:
            raise ValidationFailed(" ".join(exc.messages), details={"field": "password"}) from exc
    workshops = []
    if role == Role.WORKSHOP:
        if not workshop_codes:
            raise ValidationFailed(_("A workshop member needs at least one workshop."),
                                   details={"field": "workshop"})
        for code in workshop_codes:
            ws = Workshop.objects.filter(code__iexact=code).first()
            if ws is None:
                raise NotFound(_("No workshop with code '%(code)s'.") % {"code": code},
                               details={"field": "workshop"})
            workshops.append(ws)
    elif workshop_codes:
        raise ValidationFailed(_("Only workshop members are bound to workshops."),
                               details={"field": "workshop"})
    client = None
    if role == Role.CLIENT:
        if not client_code:
            raise ValidationFailed(_("A client contact needs a client."),
                                   details={"field": "client"})
        client = Client.objects.filter(code__iexact=client_code).first()
        if client is None:
            raise NotFound(_("No client with code '%(code)s'.") % {"code": client_code},
                           details={"field": "client"})
    elif client_code:
        raise ValidationFailed(_("Only client contacts are bound to a client."),
                               details={"field": "client"})
    user = User(username=username, email=email, first_name=first_name, last_name=last_name,
                role=role, client=client, language=language,
                is_staff=(role == Role.ADMIN), is_superuser=(role == Role.ADMIN))
    user.set_password(password)
    user.save()
    if workshops:
        user.workshops.set(workshops)
    audit.record(actor=actor, action="user.create", obj=user,
                 after={"username": username, "role": role,
                        "workshops": [w.code for w in workshops],
                        "client": client.code if client else None})
    return user


@transaction.atomic
def token_create(*, actor: User, user: User, name: str = "api") -> tuple[ApiToken, str]:
    """Create a token for `user`; returns the token row and the raw key (shown once)."""
    if actor.pk != user.pk and actor.role != Role.ADMIN:
        raise PermissionDenied(_("Only an administrator can create tokens for someone else."))
    if not user.is_active:
        raise ValidationFailed(_("This user is deactivated."))
    name = (name or "api").strip()[:80] or "api"
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, prefix=raw[:12], key_hash=hash_token(raw))
    audit.record(actor=actor, action="token.create", obj=token,
                 after={"user": user.username, "name": name, "prefix": token.prefix})
    return token, raw


@transaction.atomic
def token_revoke(*, actor: User, token_id: int) -> ApiToken:
    qs = ApiToken.objects.select_for_update()
    if actor.role != Role.ADMIN:
        qs = qs.filter(user=actor)
    token = qs.filter(pk=token_id).first()
    if token is None:
        raise NotFound(_("No such token."))
    if token.revoked_at is not None:
        raise Conflict(_("This token is already revoked."))
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit.record(actor=actor, action="token.revoke", obj=token,
                 before={"revoked_at": None}, after={"revoked_at": token.revoked_at})
    return token


def token_authenticate(raw: str) -> User | None:
    if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = (ApiToken.objects.select_related("user")
             .filter(key_hash=hash_token(raw), revoked_at__isnull=True).first())
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    # Touch last_used_at at most once a minute: a scan storm should not become a write storm.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


@transaction.atomic
def user_set_language(*, actor: User, language: str) -> User:
    from django.conf import settings

    if language not in dict(settings.LANGUAGES):
        raise ValidationFailed(_("Unknown language '%(language)s'.") % {"language": language},
                               details={"field": "language"})
    if actor.language != language:
        before = {"language": actor.language}
        User.objects.filter(pk=actor.pk).update(language=language)
        actor.language = language
        audit.record(actor=actor, action="user.language", obj=actor, before=before,
                     after={"language": language})
    return actor
