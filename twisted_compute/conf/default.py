"""``[DEFAULT]``: what every process reads: the APIs it serves and where,
the host's name, the state directory, the message bus, service liveness,
availability zones and config drives."""

from __future__ import annotations

import socket

from twisted_compute.conf.opts import (
    Opt, OptGroups, bool_opt, float_opt, int_opt, list_opt, port_opt,
    str_opt)

#: The names ``enabled_apis`` may hold, each with its own listener.
API_NAMES = ("osapi_compute", "metadata", "image", "ec2")
_API_PORTS = {"osapi_compute": 8774, "metadata": 8775, "image": 9292,
              "ec2": 8773}


def _api_opts() -> list[Opt]:
    opts = []
    for api in API_NAMES:
        opts += [
            str_opt(f"{api}_listen", "0.0.0.0",
                    f"IP address on which the {api} API listens"),
            port_opt(f"{api}_listen_port", _API_PORTS[api],
                     f"Port on which the {api} API listens"),
            int_opt(f"{api}_workers", 1,
                    f"Number of worker processes for the {api} API; 1 "
                    "serves from the main process", min=1, max=64),
        ]
    return opts


DEFAULT_OPTS = [
    list_opt("enabled_apis", ["osapi_compute", "metadata", "image"],
             "APIs the compute-api process serves, each on its own "
             "listener"),
    list_opt("enabled_ssl_apis", [],
             "APIs served over TLS (needs [ssl] cert_file and key_file)"),
    *_api_opts(),
    # --- the EC2 API (twisted_compute/api/ec2) ---
    str_opt("ec2_region", "nova",
            "Region name the EC2 API answers DescribeRegions with"),
    int_opt("ec2_timestamp_expiry", 900,
            "Seconds a signed EC2 request's timestamp may be off the "
            "server's clock before it is RequestExpired", min=1),
    str_opt("host", socket.gethostname(),
            "Name of this host, as services and instances record it"),
    str_opt("state_path", "/var/lib/twisted-compute",
            "Top-level directory for state: the SQLite database, images, "
            "instance files"),
    str_opt("transport_url", "local://",
            "Message bus URL: local:// (in process) or "
            "rabbit://user:pass@host:port/vhost"),
    str_opt("compute_driver", "fake",
            "Virt driver of the compute agent: fake or libvirt",
            choices=("fake", "libvirt")),
    int_opt("report_interval", 10,
            "Seconds between service heartbeats", min=1),
    int_opt("service_down_time", 60,
            "Seconds without a heartbeat after which a service is down",
            min=1),
    str_opt("default_availability_zone", "nova",
            "Availability zone of compute hosts not in an aggregate zone"),
    str_opt("internal_service_availability_zone", "internal",
            "Availability zone shown for services other than compute "
            "(conductor, scheduler, ...)"),
    str_opt("default_schedule_zone", "",
            "Availability zone given to servers created without one"),
    int_opt("max_request_body_size", 114688,
            "Largest accepted request body, in bytes", min=1),
    bool_opt("debug", False, "Log at debug level"),
    bool_opt("allow_resize_to_same_host", False,
             "Whether a resize may choose the host the server is on"),
    str_opt("instance_name_template", "instance-%08x",
            "Template of the hypervisor's name for an instance (from its "
            "numeric id)"),
    str_opt("osapi_compute_unique_server_name_scope", "",
            "When 'project', server names must be unique in a project",
            choices=("", "project", "global")),
    # --- the message bus (twisted_compute/rpc) ---
    int_opt("rpc_response_timeout", 60,
            "Seconds to wait for the reply to an RPC call", min=1),
    int_opt("boot_handoff_timeout", 15,
            "Seconds the API waits for the message bus to confirm that a "
            "new boot reached the conductors' queue.  After that (a "
            "RabbitMQ cluster without quorum, or no broker) the new "
            "servers that no conductor took are deleted again and the "
            "request is answered 503", min=1),
    int_opt("long_rpc_timeout", 1800,
            "Seconds to wait for the reply to a long RPC call (scheduling)",
            min=1),
    str_opt("control_exchange", "twisted_compute",
            "AMQP topic exchange the RPC topics are published to"),
    # --- config drives (twisted_compute/virt/configdrive.py) ---
    bool_opt("force_config_drive", False,
             "Give every new server a config drive, asked for or not"),
    str_opt("config_drive_format", "iso9660",
            "File system of config drives", choices=("iso9660",)),
    str_opt("mkisofs_cmd", "genisoimage",
            "Program that builds config drive ISO images: genisoimage, "
            "mkisofs or xorriso (run as 'xorriso -as mkisofs')"),
    float_opt("mkisofs_timeout", 60.0,
              "Seconds the config drive ISO program may run before it is "
              "killed and the build fails", min=1),
]


def list_opts() -> OptGroups:
    return [("DEFAULT", DEFAULT_OPTS)]
