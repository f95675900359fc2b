"""Authentication backends."""

from axes.backends import AxesStandaloneBackend


class LoginThrottleBackend(AxesStandaloneBackend):
    """django-axes' gate, first in AUTHENTICATION_BACKENDS. A call to authenticate() without a
    request (the test client's login(), a shell) has no address to throttle by: it is left to
    the next backend instead of failing. Every login over HTTP (LoginView, the admin) passes
    its request and is throttled."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
