from pretix.api.urls import event_router

from .api import ImportedSecretViewSet

event_router.register("imported_secrets", ImportedSecretViewSet, basename="importedsecret")
