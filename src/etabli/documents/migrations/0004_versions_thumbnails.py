"""Versions (family, number, the version replaced, which one is current), thumbnails and new
kinds. Existing documents become version 1 of their own family; a piece's documents get the
piece's line."""

import django.db.models.deletion

import etabli.documents.models
from django.db import migrations, models


def first_versions(apps, schema_editor):
    Document = apps.get_model("documents", "Document")
    for doc in Document.objects.filter(family="").only("pk", "token").iterator():
        Document.objects.filter(pk=doc.pk).update(family=doc.token)
    for doc in (Document.objects.filter(piece__isnull=False, line__isnull=True)
                .select_related("piece").only("pk", "piece__line_id").iterator()):
        Document.objects.filter(pk=doc.pk).update(line_id=doc.piece.line_id)


class Migration(migrations.Migration):

    dependencies = [
        ("documents", "0003_document_line"),
        ("production", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="document",
            name="family",
            field=models.CharField(db_index=True, default="", max_length=40,
                                   verbose_name="family"),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="document",
            name="version",
            field=models.PositiveIntegerField(default=1, verbose_name="version"),
        ),
        migrations.AddField(
            model_name="document",
            name="is_current",
            field=models.BooleanField(default=True, verbose_name="is current"),
        ),
        migrations.AddField(
            model_name="document",
            name="replaces",
            field=models.OneToOneField(blank=True, null=True,
                                       on_delete=django.db.models.deletion.PROTECT,
                                       related_name="replaced_by", to="documents.document",
                                       verbose_name="replaces"),
        ),
        migrations.AddField(
            model_name="document",
            name="thumbnail",
            field=models.FileField(blank=True, max_length=200,
                                   upload_to=etabli.documents.models._thumbnail_to,
                                   verbose_name="thumbnail"),
        ),
        migrations.AlterField(
            model_name="document",
            name="kind",
            field=models.CharField(choices=[
                ("reference_photo", "Reference photo"), ("photo", "Photo"), ("cad", "CAD file"),
                ("render", "Render"), ("specification", "Specification"),
                ("technical_sheet", "Technical sheet"),
                ("material_spec", "Material specification"), ("certificate", "Certificate"),
                ("warranty", "Warranty"), ("client_acceptance", "Client's written acceptance"),
                ("other", "Other document")], default="other", max_length=20,
                verbose_name="kind"),
        ),
        migrations.RunPython(first_versions, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="document",
            constraint=models.UniqueConstraint(fields=("family", "version"),
                                               name="document_one_number_per_version",
                                               violation_error_message=(
                                                   "This version of the document exists "
                                                   "already.")),
        ),
        migrations.AddConstraint(
            model_name="document",
            constraint=models.UniqueConstraint(condition=models.Q(("is_current", True)),
                                               fields=("family",),
                                               name="document_one_current_version",
                                               violation_error_message=(
                                                   "A document has one current version.")),
        ),
        migrations.AddConstraint(
            model_name="document",
            constraint=models.CheckConstraint(condition=models.Q(("version__gte", 1)),
                                              name="document_version_positive"),
        ),
    ]
