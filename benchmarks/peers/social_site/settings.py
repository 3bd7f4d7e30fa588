"""Django settings of the social-auth peer (benchmark only; configured from the environment)."""

import os

SECRET_KEY = "benchmark-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "social_site.urls"
USE_TZ = True
EMULATOR_URL = os.environ["BENCH_EMULATOR_URL"].rstrip("/")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "social_django",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
AUTHENTICATION_BACKENDS = [
    "social_site.backend.EmulatedAmazonOAuth2",
    "django.contrib.auth.backends.ModelBackend",
]
SOCIAL_AUTH_AMAZON_KEY = os.environ["BENCH_CLIENT_ID"]
SOCIAL_AUTH_AMAZON_SECRET = "unused"
SOCIAL_AUTH_JSONFIELD_ENABLED = True
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["BENCH_DB_NAME"],
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": os.environ["BENCH_DB_PORT"],
        "CONN_MAX_AGE": 600,
    }
}
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
