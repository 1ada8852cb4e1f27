from django.urls import path

from . import views, webhooks

app_name = "stacks"
urlpatterns = [
    path("stacks/", views.stack_list, name="list"),
    path("stacks/new/", views.stack_new, name="new"),
    path("stacks/templates/", views.template_list, name="templates"),
    path("stacks/adopt/", views.adopt, name="adopt"),
    path("stacks/templates/<slug:slug>/deploy/", views.template_deploy, name="template_deploy"),
    path("stacks/<int:pk>/", views.stack_detail, name="detail"),
    path("stacks/<int:pk>/edit/", views.stack_edit, name="edit"),
    path("stacks/<int:pk>/logs/", views.stack_logs, name="logs"),
    path("stacks/<int:pk>/versions/<int:number>/", views.version_detail, name="version"),
    path(
        "stacks/<int:pk>/versions/<int:number>/rollback/", views.version_rollback, name="rollback"
    ),
    path("stacks/<int:pk>/webhook/", views.stack_webhook_info, name="webhook_info"),
    path("stacks/<int:pk>/webhook/rotate/", views.stack_webhook_rotate, name="webhook_rotate"),
    path("stacks/<int:pk>/delete/", views.stack_delete, name="delete"),
    path("stacks/<int:pk>/<str:action>/", views.stack_action, name="action"),
    path("hooks/stacks/<uuid:uuid>/", webhooks.stack_webhook, name="webhook"),
]
