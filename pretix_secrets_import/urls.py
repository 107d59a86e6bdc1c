from django.urls import re_path

from pretix.api.urls import event_router

from .api import ImportedSecretViewSet
from .views import SecretsImportSettings

urlpatterns = [
    re_path(r"^control/event/(?P<organizer>[^/]+)/(?P<event>[^/]+)/secrets_import/settings$",
            SecretsImportSettings.as_view(), name="settings"),
]

event_router.register("imported_secrets", ImportedSecretViewSet, basename="importedsecret")
