"""/api/v1/… (the REST API) and /tokens/ (the API tokens page).

Adding an endpoint: a view in api/views/ built on `ApiView` and one line here.
"""

from django.contrib.auth.decorators import login_required
from django.urls import path

import containers.urls  # noqa: F401  (registers the <action:…> converter used below)

from . import pages
from .views import (
    alerts,
    audit,
    containers,
    hosts,
    images,
    jobs,
    logs,
    me,
    registries,
    resources,
    schema,
    stacks,
    stats,
)
from .views.index import Index

app_name = "api"
V1 = "api/v1/"
urlpatterns = [
    path(V1, Index.as_view(), name="index"),
    path(f"{V1}me/", me.Me.as_view(), name="me"),
    path(f"{V1}hosts/", hosts.HostList.as_view(), name="hosts"),
    path(f"{V1}hosts/<int:pk>/", hosts.HostDetail.as_view(), name="host"),
    path(f"{V1}containers/", containers.ContainerList.as_view(), name="containers"),
    path(f"{V1}containers/<int:pk>/", containers.ContainerDetail.as_view(), name="container"),
    path(f"{V1}containers/<int:pk>/logs/", logs.ContainerLogs.as_view(), name="container_logs"),
    path(
        f"{V1}containers/<int:pk>/<action:action>/",
        containers.ContainerAction.as_view(),
        name="container_action",
    ),
    path(f"{V1}volumes/", resources.VolumeList.as_view(), name="volumes"),
    path(f"{V1}volumes/<int:pk>/", resources.VolumeDetail.as_view(), name="volume"),
    path(f"{V1}networks/", resources.NetworkList.as_view(), name="networks"),
    path(f"{V1}networks/<int:pk>/", resources.NetworkDetail.as_view(), name="network"),
    path(f"{V1}containers/<int:pk>/stats/", stats.ContainerStats.as_view(), name="container_stats"),
    path(f"{V1}images/", images.ImageList.as_view(), name="images"),
    path(f"{V1}images/pull/", images.ImagePull.as_view(), name="image_pull"),
    path(f"{V1}images/build/", images.ImageBuild.as_view(), name="image_build"),
    path(f"{V1}images/prune/", images.ImagePrune.as_view(), name="image_prune"),
    path(f"{V1}images/<int:pk>/", images.ImageDetail.as_view(), name="image"),
    path(f"{V1}images/<int:pk>/tag/", images.ImageTag.as_view(), name="image_tag"),
    path(f"{V1}images/<int:pk>/push/", images.ImagePush.as_view(), name="image_push"),
    path(f"{V1}images/<int:pk>/export/", images.ImageExport.as_view(), name="image_export"),
    path(f"{V1}registries/", registries.RegistryList.as_view(), name="registries"),
    path(f"{V1}registries/<int:pk>/", registries.RegistryDetail.as_view(), name="registry"),
    path(
        f"{V1}registries/<int:pk>/test-login/",
        registries.RegistryTestLogin.as_view(),
        name="registry_test",
    ),
    path(
        f"{V1}registries/<int:pk>/repositories/",
        registries.RegistryRepositories.as_view(),
        name="registry_repositories",
    ),
    path(f"{V1}registries/<int:pk>/tags/", registries.RegistryTags.as_view(), name="registry_tags"),
    path(
        f"{V1}registries/<int:pk>/delete-tag/",
        registries.RegistryDeleteTag.as_view(),
        name="registry_delete_tag",
    ),
    path(f"{V1}alert-rules/", alerts.AlertRuleList.as_view(), name="alert_rules"),
    path(f"{V1}alert-rules/<int:pk>/", alerts.AlertRuleDetail.as_view(), name="alert_rule"),
    path(
        f"{V1}alert-rules/<int:pk>/enable/",
        alerts.AlertRuleEnable.as_view(),
        name="alert_rule_enable",
    ),
    path(
        f"{V1}alert-rules/<int:pk>/disable/",
        alerts.AlertRuleDisable.as_view(),
        name="alert_rule_disable",
    ),
    path(f"{V1}silences/", alerts.SilenceList.as_view(), name="silences"),
    path(f"{V1}silences/<int:pk>/expire/", alerts.SilenceExpire.as_view(), name="silence_expire"),
    path(f"{V1}alerts/", alerts.AlertList.as_view(), name="alerts"),
    path(f"{V1}stacks/", stacks.StackList.as_view(), name="stacks"),
    path(f"{V1}stacks/<int:pk>/", stacks.StackDetail.as_view(), name="stack"),
    path(f"{V1}stacks/<int:pk>/deploy/", stacks.StackDeploy.as_view(), name="stack_deploy"),
    path(f"{V1}stacks/<int:pk>/redeploy/", stacks.StackRedeploy.as_view(), name="stack_redeploy"),
    path(f"{V1}stacks/<int:pk>/pull/", stacks.StackPull.as_view(), name="stack_pull"),
    path(f"{V1}stacks/<int:pk>/scale/", stacks.StackScale.as_view(), name="stack_scale"),
    path(f"{V1}stacks/<int:pk>/down/", stacks.StackDown.as_view(), name="stack_down"),
    path(f"{V1}audit/", audit.AuditList.as_view(), name="audit"),
    path(f"{V1}jobs/<int:pk>/", jobs.JobDetail.as_view(), name="job"),
    # The OpenAPI document (token or session) and its browsable page (signed-in users).
    path(f"{V1}schema/", schema.SchemaView.as_view(), name="schema"),
    # DRF marks its views login-not-required; the docs page is a page: sign in first.
    path(
        f"{V1}docs/",
        login_required(schema.DocsView.as_view(url_name="api:schema")),
        name="docs",
    ),
]
# The schema answers tokens too: the pages' login redirect must not apply.
urlpatterns[-2].callback.login_required = False

# The API tokens page (a page, signed-in users only).
urlpatterns += [
    path("tokens/", pages.token_list, name="tokens"),
    path("tokens/<int:pk>/revoke/", pages.token_revoke, name="token_revoke"),
]
