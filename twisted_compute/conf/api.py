"""The API process: ``[api]`` (including the metadata API's options),
``[wsgi]``, ``[ssl]``, ``[oslo_policy]`` and ``[cors]``."""

from __future__ import annotations

from twisted_compute.conf.opts import (
    OptGroups, bool_opt, int_opt, list_opt, str_opt)

API_OPTS = [
    str_opt("auth_strategy", "keystone",
            "How requests are authenticated: noauth or keystone",
            choices=("noauth", "noauth2", "keystone")),
    int_opt("max_limit", 1000,
            "Most items a collection returns in one response", min=1),
    str_opt("compute_link_prefix", "",
            "Base URL used in compute links instead of the request's"),
    str_opt("glance_link_prefix", "",
            "Base URL used in image links instead of the request's"),
    bool_opt("enable_instance_password", True,
             "Whether actions that set a server's admin password answer "
             "it (evacuate before microversion 2.14)"),
    bool_opt("use_forwarded_for", False,
             "Trust X-Forwarded-For for the remote address"),
    str_opt("vendordata_jsonfile_path", "",
            "JSON file of static vendor data"),
    list_opt("extensions", ["all"],
             "Compute API extensions (Twisted plugins providing "
             "IComputeExtension) to load: all, or their names or aliases"),
    # --- the metadata API (twisted_compute/api/metadata) ---
    int_opt("metadata_cache_expiration", 15,
            "Seconds the metadata API keeps an instance's metadata; 0 "
            "disables the cache", min=0),
    str_opt("dhcp_domain", "novalocal",
            "Domain appended to instance hostnames in metadata; empty for "
            "none"),
]

WSGI_OPTS = [
    str_opt("api_paste_config", "api-pipeline.ini",
            "The pipeline ini that composes each API; a relative name is "
            "looked for beside the config files, then in the package"),
    bool_opt("secure_proxy_ssl_header", False,
             "Trust X-Forwarded-Proto/X-Forwarded-Host from a proxy"),
    int_opt("client_socket_timeout", 900,
            "Seconds an idle client connection is kept", min=0),
    int_opt("max_header_line", 16384,
            "Longest request line or header line accepted, in bytes; a "
            "longer request line is answered with 414", min=1024),
]

SSL_OPTS = [
    str_opt("cert_file", "", "TLS certificate (PEM) for enabled_ssl_apis"),
    str_opt("key_file", "", "TLS private key (PEM) for enabled_ssl_apis"),
    str_opt("ca_file", "", "CA bundle (PEM) to verify clients, optional"),
]

POLICY_OPTS = [
    str_opt("policy_file", "policy.yaml",
            "Policy overrides; a relative name is looked for beside the "
            "config files"),
]

CORS_OPTS = [
    list_opt("allowed_origin", [],
             "Origins allowed to make cross-site requests ('*' for any)"),
    bool_opt("allow_credentials", True,
             "Allow credentials in CORS requests"),
    list_opt("expose_headers",
             ["X-Compute-Request-Id", "X-OpenStack-Request-ID",
              "OpenStack-API-Version", "X-OpenStack-Nova-API-Version"],
             "Headers exposed to CORS clients"),
    int_opt("max_age", 3600, "Seconds a preflight answer may be cached",
            min=0),
    list_opt("allow_methods",
             ["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD"],
             "Methods allowed in CORS requests"),
    list_opt("allow_headers",
             ["X-Auth-Token", "X-Openstack-Request-Id", "X-Identity-Status",
              "X-Roles", "X-Service-Catalog", "X-User-Id", "X-Tenant-Id",
              "OpenStack-API-Version", "X-OpenStack-Nova-API-Version",
              "Content-Type"],
             "Headers allowed in CORS requests"),
]


def list_opts() -> OptGroups:
    return [("api", API_OPTS), ("wsgi", WSGI_OPTS), ("ssl", SSL_OPTS),
            ("oslo_policy", POLICY_OPTS), ("cors", CORS_OPTS)]
