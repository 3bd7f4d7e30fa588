from django.urls import path

from social_site import views

urlpatterns = [
    path("api/v1/sessions/<str:backend>", views.amazon_token),
    path("api/v1/me", views.me),
]
