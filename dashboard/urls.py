from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views

urlpatterns = [
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("", views.home, name="home"),
    path("hosts/", views.host_list, name="host_list"),
    path("hosts/new/", views.host_edit, name="host_new"),
    path("hosts/<int:pk>/", views.host_detail, name="host_detail"),
    path("hosts/<int:pk>/edit/", views.host_edit, name="host_edit"),
    path("hosts/<int:pk>/test/", views.host_test, name="host_test"),
    path("hosts/<int:pk>/delete/", views.host_delete, name="host_delete"),
    path("teams/", views.team_list, name="team_list"),
    path("teams/<int:pk>/", views.team_detail, name="team_detail"),
    path("teams/<int:pk>/delete/", views.team_delete, name="team_delete"),
    path("memberships/<int:pk>/", views.membership_edit, name="membership_edit"),
    path("users/new/", views.user_create, name="user_create"),
    path("users/<int:pk>/flags/", views.user_flags, name="user_flags"),
    path("audit/", views.audit_list, name="audit"),
    path("jobs/<int:pk>/", views.job_detail, name="job"),
    path("containers/", include("containers.urls")),
    path("", include("resources.urls")),
    path("", include("api.urls")),  # /api/v1/… and the API tokens page /tokens/
    path("registries/", include("registries.urls")),
    path("monitoring/", include("alerts.urls")),
    path("", include("monitoring.urls")),
    path("images/", include("images.urls")),
    path("", include("stacks.urls")),
]
