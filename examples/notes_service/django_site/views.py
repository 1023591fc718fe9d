from django.http import HttpRequest, JsonResponse
from fastapi import HTTPException

from notes_service.django_site.services import notes_of


def my_notes(request: HttpRequest) -> JsonResponse:
    """The caller's notes; the caller is whoever the Authorization header names."""
    headers = {"authorization": request.headers.get("Authorization", "")}
    try:
        notes = notes_of(_scope={"headers": headers})
    except HTTPException as exc:
        return JsonResponse({"detail": exc.detail}, status=exc.status_code)
    return JsonResponse({"notes": notes})
