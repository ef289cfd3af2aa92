"""``[keystone_authtoken]``: how the API checks Keystone tokens."""

from __future__ import annotations

from twisted_compute.conf.opts import OptGroups, float_opt, int_opt, str_opt

KEYSTONE_AUTHTOKEN_OPTS = [
    str_opt("www_authenticate_uri", "",
            "Public Keystone endpoint announced in WWW-Authenticate"),
    str_opt("auth_url", "http://127.0.0.1:5000/v3",
            "Keystone v3 URL used to validate tokens"),
    str_opt("username", "nova", "Service user that validates tokens"),
    str_opt("password", "", "Password of the service user", secret=True),
    str_opt("project_name", "service", "Project of the service user"),
    str_opt("user_domain_name", "Default", "Domain of the service user"),
    str_opt("project_domain_name", "Default",
            "Domain of the service user's project"),
    int_opt("token_cache_time", 300,
            "Seconds a validated token is cached", min=0),
    float_opt("http_connect_timeout", 10.0,
              "Seconds to wait for Keystone", min=0.1),
]


def list_opts() -> OptGroups:
    return [("keystone_authtoken", KEYSTONE_AUTHTOKEN_OPTS)]
