from django.urls import path

from . import views

app_name = "images"
urlpatterns = [
    path("", views.image_list, name="list"),
    path("pull/", views.pull, name="pull"),
    path("build/", views.build, name="build"),
    path("import/", views.load, name="import"),
    path("prune/", views.prune, name="prune"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/tag/", views.tag, name="tag"),
    path("<int:pk>/push/", views.push, name="push"),
    path("<int:pk>/remove/", views.remove, name="remove"),
    path("<int:pk>/export/", views.export, name="export"),
    path("<int:pk>/copy/", views.copy, name="copy"),
    path("<int:pk>/assign/", views.assign, name="assign"),
    path("<int:pk>/share/", views.share, name="share"),
]
