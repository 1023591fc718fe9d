from django.urls import path

from notes_service.django_site import views

urlpatterns = [path("me/notes", views.my_notes)]
