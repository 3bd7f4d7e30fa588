from django.urls import path

from allauth_site import views

urlpatterns = [
    path("api/v1/sessions/amazon", views.amazon_token),
    path("api/v1/me", views.me),
]
