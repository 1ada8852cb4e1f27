from django.urls import path

from . import views

app_name = "registries"
urlpatterns = [
    path("", views.registry_list, name="list"),
    path("new/", views.registry_edit, name="new"),
    path("<int:pk>/", views.registry_detail, name="detail"),
    path("<int:pk>/edit/", views.registry_edit, name="edit"),
    path("<int:pk>/delete/", views.registry_delete, name="delete"),
    path("<int:pk>/test/", views.registry_test, name="test"),
    path("<int:pk>/repositories/", views.repositories, name="repositories"),
    # Repository names have slashes: the tags page takes the rest of the path.
    path("<int:pk>/tags/<path:repository>/", views.tags, name="tags"),
    path("<int:pk>/delete-tag/", views.delete_tag, name="delete_tag"),
]
