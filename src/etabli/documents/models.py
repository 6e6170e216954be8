from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class DocumentKind(models.TextChoices):
    REFERENCE_PHOTO = "reference_photo", _("Reference photo")
    PHOTO = "photo", _("Photo")
    CAD = "cad", _("CAD file")
    RENDER = "render", _("Render")
    SPECIFICATION = "specification", _("Specification")
    CERTIFICATE = "certificate", _("Certificate")
    OTHER = "other", _("Other document")


class Visibility(models.TextChoices):
    HOUSE = "house", _("House only")
    WORKSHOPS = "workshops", _("House and the workshops on the route")
    CLIENT = "client", _("House, workshops and the client")


class DocumentQuerySet(models.QuerySet):
    def visible_to(self, user) -> DocumentQuerySet:
        """House staff see every document; a workshop member those marked for the workshops of
        pieces they can see; a client contact those shared with the client on their orders."""
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        from etabli.accounts.models import Role
        from etabli.production.models import Piece

        if user.sees_clients:
            return self
        if user.role == Role.WORKSHOP:
            pieces = Piece.objects.visible_to(user)
            shared = Q(visibility__in=[Visibility.WORKSHOPS, Visibility.CLIENT])
            return self.filter(shared & (Q(piece__in=pieces)
                                         | Q(piece__isnull=True,
                                             order__in=pieces.values("order_id"))))
        if user.role == Role.CLIENT:
            return self.filter(visibility=Visibility.CLIENT, order__client_id=user.client_id)
        return self.none()


def _upload_to(instance: Document, filename: str) -> str:
    # The stored name never comes from the user: no path tricks, no executable extensions.
    return f"documents/{instance.order_id}/{instance.token}"


class Document(models.Model):
    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="documents",
                              verbose_name=_("order"))
    line = models.ForeignKey("orders.OrderLine", null=True, blank=True, on_delete=models.CASCADE,
                             related_name="documents", verbose_name=_("order line"))
    piece = models.ForeignKey("production.Piece", null=True, blank=True, on_delete=models.CASCADE,
                              related_name="documents", verbose_name=_("piece"))
    event = models.ForeignKey("production.TrackingEvent", null=True, blank=True,
                              on_delete=models.PROTECT, related_name="documents",
                              verbose_name=_("event"))
    kind = models.CharField(max_length=20, choices=DocumentKind.choices,
                            default=DocumentKind.OTHER, verbose_name=_("kind"))
    visibility = models.CharField(max_length=10, choices=Visibility.choices,
                                  default=Visibility.WORKSHOPS, verbose_name=_("visibility"))
    token = models.CharField(max_length=40, unique=True, verbose_name=_("token"))
    file = models.FileField(upload_to=_upload_to, max_length=200, verbose_name=_("file"))
    original_name = models.CharField(max_length=200, verbose_name=_("original name"))
    content_type = models.CharField(max_length=100, verbose_name=_("content type"))
    size_bytes = models.PositiveBigIntegerField(verbose_name=_("size bytes"))
    sha256 = models.CharField(max_length=64, verbose_name=_("sha256"))
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                    related_name="+", verbose_name=_("uploaded by"))
    uploaded_at = models.DateTimeField(auto_now_add=True, verbose_name=_("uploaded at"))

    objects = DocumentQuerySet.as_manager()

    class Meta:
        verbose_name = _("document")
        verbose_name_plural = _("documents")
        ordering = ["order", "uploaded_at", "id"]

    def __str__(self) -> str:
        return self.original_name

    @property
    def is_image(self) -> bool:
        return self.content_type in ("image/jpeg", "image/png", "image/webp")
