from django.urls import path

from . import views

app_name = "alerts"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("rules/", views.rule_list, name="rules"),
    path("rules/new/", views.rule_new, name="rule_new"),
    path("rules/<int:pk>/", views.rule_edit, name="rule_edit"),
    path("rules/<int:pk>/enable/", views.rule_enable, name="rule_enable"),
    path("rules/<int:pk>/disable/", views.rule_disable, name="rule_disable"),
    path("rules/<int:pk>/delete/", views.rule_delete, name="rule_delete"),
    path("alerts/", views.alert_list, name="alerts"),
    path("silences/", views.silence_list, name="silences"),
    path("silences/new/", views.silence_new, name="silence_new"),
    path("silences/<int:pk>/expire/", views.silence_expire, name="silence_expire"),
]
