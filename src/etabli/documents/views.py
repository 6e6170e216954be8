from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404

from .models import Document


@login_required
def download(request, token: str):
    """Serve a document to someone allowed to see it, never as something a browser runs."""
    doc = Document.objects.visible_to(request.user).filter(token=token).first()
    if doc is None:
        raise Http404("No such document.")
    inline = doc.is_image or doc.content_type == "application/pdf"
    response = FileResponse(doc.file.open("rb"), content_type=doc.content_type,
                            as_attachment=not inline or request.GET.get("download") == "1",
                            filename=doc.original_name)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
