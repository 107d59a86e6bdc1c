from django.urls import path, re_path

from pretix.api.urls import event_router

from pretix_secrets_import.api import ImportedSecretViewSet
from pretix_secrets_import.control.views import (
    deleting, imports, pool, settings,
)

PREFIX = "control/event/<str:organizer>/<str:event>/secrets_import/"

urlpatterns = [
    re_path(r"^control/event/(?P<organizer>[^/]+)/(?P<event>[^/]+)/secrets_import/settings$",
            settings.SecretsImportSettings.as_view(), name="settings"),
    path(PREFIX, pool.PoolView.as_view(), name="pool"),
    path(PREFIX + "add", pool.AddSecretView.as_view(), name="pool.add"),
    path(PREFIX + "delete", deleting.DeleteSecretsView.as_view(), name="pool.delete"),
    path(PREFIX + "delete_unused", deleting.DeleteUnusedView.as_view(), name="pool.delete_unused"),
    path(PREFIX + "misfits", pool.MisfitsView.as_view(), name="misfits"),
    path(PREFIX + "misfits/delete", pool.DeleteMisfitsView.as_view(), name="misfits.delete"),
    path(PREFIX + "import/", imports.ImportUploadView.as_view(), name="import"),
    path(PREFIX + "import/<uuid:file>/", imports.ImportProcessView.as_view(), name="import.process"),
    path(PREFIX + "import/<uuid:file>/report/<uuid:report>/", imports.ImportReportView.as_view(),
         name="import.report"),
]

event_router.register("imported_secrets", ImportedSecretViewSet, basename="importedsecret")
