from django.urls import path

from .views import feed

urlpatterns = [path("oncall/feed/<str:token>.ics", feed, name="oncall-feed-ics")]
