"""``compute-manage``: the operator's one-off commands.

    compute-manage [--config-file F ...] db sync
    compute-manage [--config-file F ...] db version
    compute-manage config sample
    compute-manage [--config-file F ...] flavor create NAME --ram MB --vcpus N --disk GB [--id ID] [--private]
    compute-manage [--config-file F ...] flavor list
    compute-manage [--config-file F ...] image import FILE --name NAME [--disk-format qcow2] [--public] [--property k=v]
    compute-manage [--config-file F ...] clouds-yaml [--all-in-one] [--cloud NAME]
    compute-manage [--config-file F ...] ec2-credentials create --user U --project P
    compute-manage [--config-file F ...] ec2-credentials list [--user U] [--project P]
    compute-manage [--config-file F ...] ec2-credentials delete ACCESS
    compute-manage [--config-file F ...] network metadata-redirect [--network default] [--remove] [--dry-run]
    compute-manage api openapi [--api compute|image] [--microversion X.Y]

These run outside the reactor (no service is serving), so they use the DB
engine directly.
"""

from __future__ import annotations

import argparse
import sys

import sqlalchemy as sa

from twisted_compute import config as config_mod
from twisted_compute.db import migration
from twisted_compute.db.pool import make_engine


def _engine(conf) -> sa.engine.Engine:
    return make_engine(conf.database_url, pool_size=1)


def cmd_db_sync(conf, args) -> int:
    engine = _engine(conf)
    migration.upgrade(engine)
    print(f"database at revision {migration.current(engine)}")
    return 0


def cmd_db_version(conf, args) -> int:
    engine = _engine(conf)
    print(migration.current(engine) or "empty")
    return 0


def cmd_config_sample(conf, args) -> int:
    sys.stdout.write(config_mod.sample())
    return 0


def cmd_clouds_yaml(conf, args) -> int:
    from twisted_compute import clouds_yaml
    if args.all_in_one:
        from twisted_compute.all_in_one import embedded_defaults
        conf = embedded_defaults(conf)
    sys.stdout.write(clouds_yaml.render(conf, args.cloud))
    return 0


def cmd_api_openapi(conf, args) -> int:
    """The OpenAPI 3.1 document (as GET /openapi.json serves it)."""
    import json
    from twisted_compute.api import openapi
    document = openapi.document(args.api, args.microversion
                                if args.api == "compute" else None)
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False)
                     + "\n")
    return 0


def _transact(conf, thd, *args, **kwargs):
    engine = _engine(conf)
    migration.check(engine)
    with engine.connect() as conn:
        with conn.begin():
            return thd(conn, *args, **kwargs)


def cmd_flavor_create(conf, args) -> int:
    from twisted_compute.db import flavors
    import uuid
    values = {"flavorid": args.id or str(uuid.uuid4()), "name": args.name,
              "memory_mb": args.ram, "vcpus": args.vcpus,
              "root_gb": args.disk, "ephemeral_gb": args.ephemeral,
              "swap": args.swap, "is_public": not args.private,
              "rxtx_factor": 1.0, "description": args.description}
    flavor = _transact(conf, flavors.create, values)
    print(f"{flavor.flavorid} {flavor.name}")
    return 0


def cmd_flavor_list(conf, args) -> int:
    from twisted_compute.db import flavors
    for flavor in _transact(conf, flavors.get_all, is_public=None):
        print(f"{flavor.flavorid}\t{flavor.name}\t{flavor.memory_mb} MiB\t"
              f"{flavor.vcpus} vCPU\t{flavor.root_gb} GB")
    return 0


def cmd_audit_usage(conf, args) -> int:
    """Each host's reported usage against the flavors placed on it;
    exit status 1 when any host differs."""
    from twisted_compute.db import migrations
    report = _transact(conf, migrations.audit_usage)
    differing = 0
    print("host\treported (vcpus, MiB, GB)\texpected\tstatus")
    for row in report:
        status = "ok" if row["ok"] else "DIFFERS"
        differing += not row["ok"]
        print(f"{row['host']}\t{row['reported']}\t{row['expected']}\t"
              f"{status}")
    return 1 if differing else 0


def cmd_image_import(conf, args) -> int:
    from twisted_compute.api.image import store
    properties = {}
    for item in args.property or ():
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--property {item}: expected key=value")
        properties[key] = value
    image = store.import_file(
        conf, args.file, name=args.name, disk_format=args.disk_format,
        container_format=args.container_format,
        # An image without an owner is nobody's private image: public.
        visibility="public" if args.public or not args.owner else "private",
        owner=args.owner, properties=properties, image_id=args.id)
    print(f"{image['id']} {image['name']} {image['size']} bytes "
          f"{image['checksum']}")
    return 0


# --- ec2-credentials ---------------------------------------------------------

def cmd_ec2_credentials_create(conf, args) -> int:
    """Prints the access key and its secret: the only time the secret is
    shown."""
    from twisted_compute.db import ec2_credentials
    made = _transact(conf, ec2_credentials.create, args.user, args.project)
    print(f"access {made.access}")
    print(f"secret {made.secret}")
    print(f"user {made.user_id}")
    print(f"project {made.project_id}")
    return 0


def cmd_ec2_credentials_list(conf, args) -> int:
    from twisted_compute.db import ec2_credentials
    for item in _transact(conf, ec2_credentials.get_all, args.user,
                          args.project):
        print(f"{item.access}\t{item.user_id}\t{item.project_id}")
    return 0


def cmd_ec2_credentials_delete(conf, args) -> int:
    from twisted_compute.db import ec2_credentials
    _transact(conf, ec2_credentials.delete, args.access)
    print(f"deleted {args.access}")
    return 0


# --- network metadata-redirect ---------------------------------------------

METADATA_ADDRESS = "169.254.169.254"


def redirect_rule(bridge: str, destination: str, port: int) -> list[str]:
    """The ``iptables -t nat`` rule (without the ``-I``/``-D``/``-C``
    verb and chain) that sends guests' ``169.254.169.254:80`` arriving on
    ``bridge`` to the metadata API at ``destination:port``."""
    return ["-i", bridge, "-d", f"{METADATA_ADDRESS}/32", "-p", "tcp",
            "-m", "tcp", "--dport", "80", "-j", "DNAT",
            "--to-destination", f"{destination}:{port}"]


def metadata_destination(listen: str, network_xml: str) -> str:
    """Where the redirected requests go: ``metadata_listen`` when it is
    a specific address, else the libvirt network's own IPv4 address (the
    host's address on the bridge, which a wildcard listener serves).  A
    loopback listener cannot be reached from a bridge: ValueError."""
    import ipaddress
    import xml.etree.ElementTree as ET
    if listen not in ("", "0.0.0.0", "::"):
        address = ipaddress.ip_address(listen)
        if address.is_loopback:
            raise ValueError(
                f"metadata_listen = {listen} is a loopback address, which "
                f"guests cannot reach: listen on 0.0.0.0 or the bridge's "
                f"address")
        if address.version != 4:
            raise ValueError(f"metadata_listen = {listen}: the redirect "
                             f"is IPv4 only")
        return listen
    for ip in ET.fromstring(network_xml).findall("ip"):
        if ip.get("family", "ipv4") == "ipv4" and ip.get("address"):
            return ip.get("address")
    raise ValueError("the libvirt network has no IPv4 address")


def iptables_argv(verb: str, rule: list[str]) -> list[str]:
    return ["iptables", "-t", "nat", verb, "PREROUTING", *rule]


def cmd_network_metadata_redirect(conf, args) -> int:
    import shlex
    import subprocess
    import libvirt
    uri = conf.libvirt.connection_uri
    conn = libvirt.open(uri)
    try:
        network = conn.networkLookupByName(args.network)
        bridge = network.bridgeName()
        xml = network.XMLDesc(0)
    finally:
        conn.close()
    destination = metadata_destination(conf.metadata_listen, xml)
    rule = redirect_rule(bridge, destination, conf.metadata_listen_port)
    # Inserted first, so that it wins over any other rule for the address.
    verb = "-D" if args.remove else "-I"
    argv = iptables_argv(verb, rule)
    print(shlex.join(argv))
    if args.dry_run:
        return 0
    present = subprocess.run(iptables_argv("-C", rule),
                             capture_output=True).returncode == 0
    if not args.remove:
        # A rule of ours for an older destination (the port changed)
        # would linger behind the new one: take it away.
        listed = subprocess.run(["iptables", "-t", "nat", "-S",
                                 "PREROUTING"], capture_output=True,
                                text=True)
        for stale in stale_redirects(listed.stdout, bridge, rule):
            print(shlex.join(iptables_argv("-D", stale)))
            _iptables(iptables_argv("-D", stale))
    if present != bool(args.remove):
        print("already " + ("absent" if args.remove else "present"))
        return 0
    _iptables(argv)
    return 0


def stale_redirects(listing: str, bridge: str,
                    current: list[str]) -> list[list[str]]:
    """Rules in ``iptables -S PREROUTING`` output that redirect
    169.254.169.254:80 arriving on ``bridge`` somewhere other than
    ``current`` does."""
    import shlex
    # iptables lists options in its own order: compare them as pairs.
    ours = _options(current)
    shape = _options(redirect_rule(bridge, "X", 0))
    shape.pop("--to-destination")
    found = []
    for line in listing.splitlines():
        words = shlex.split(line)
        if words[:2] != ["-A", "PREROUTING"]:
            continue
        rule = words[2:]
        options = _options(rule)
        if options is None or options == ours:
            continue
        target = options.pop("--to-destination", None)
        if options == shape and target is not None:
            found.append(rule)
    return found


def _options(rule: list[str]) -> dict[str, str] | None:
    """``{"-i": "virbr0", ...}`` of a rule made of option/value pairs
    (None for any other shape)."""
    if len(rule) % 2:
        return None
    pairs = dict(zip(rule[::2], rule[1::2]))
    return pairs if len(pairs) * 2 == len(rule) else None


def _iptables(argv: list[str]) -> None:
    import subprocess
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"iptables exited {done.returncode}: "
                           f"{done.stderr.strip()}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="compute-manage")
    parser.add_argument("--config-file", action="append", default=[],
                        help="ini file (repeatable; later wins)")
    commands = parser.add_subparsers(dest="category", required=True)

    db = commands.add_parser("db", help="database schema")
    db_cmds = db.add_subparsers(dest="action", required=True)
    db_cmds.add_parser("sync", help="migrate to the current schema") \
        .set_defaults(func=cmd_db_sync)
    db_cmds.add_parser("version", help="show the schema revision") \
        .set_defaults(func=cmd_db_version)

    cfg = commands.add_parser("config", help="configuration")
    cfg_cmds = cfg.add_subparsers(dest="action", required=True)
    cfg_cmds.add_parser("sample", help="print compute.conf.sample") \
        .set_defaults(func=cmd_config_sample)

    flavor = commands.add_parser("flavor", help="flavors")
    flavor_cmds = flavor.add_subparsers(dest="action", required=True)
    create = flavor_cmds.add_parser("create", help="add a flavor")
    create.add_argument("name")
    create.add_argument("--id")
    create.add_argument("--ram", type=int, required=True, help="MiB")
    create.add_argument("--vcpus", type=int, required=True)
    create.add_argument("--disk", type=int, required=True, help="GB")
    create.add_argument("--ephemeral", type=int, default=0)
    create.add_argument("--swap", type=int, default=0)
    create.add_argument("--private", action="store_true")
    create.add_argument("--description")
    create.set_defaults(func=cmd_flavor_create)
    flavor_cmds.add_parser("list", help="list flavors") \
        .set_defaults(func=cmd_flavor_list)

    audit = commands.add_parser("audit", help="consistency checks")
    audit_cmds = audit.add_subparsers(dest="action", required=True)
    audit_cmds.add_parser(
        "usage", help="each host's reported usage against the flavors "
                      "placed on it (exit 1 when any differs)") \
        .set_defaults(func=cmd_audit_usage)

    image = commands.add_parser("image", help="images")
    image_cmds = image.add_subparsers(dest="action", required=True)
    imp = image_cmds.add_parser("import", help="add an image from a file")
    imp.add_argument("file")
    imp.add_argument("--name", required=True)
    imp.add_argument("--id")
    imp.add_argument("--disk-format", default="qcow2")
    imp.add_argument("--container-format", default="bare")
    imp.add_argument("--public", action="store_true")
    imp.add_argument("--owner")
    imp.add_argument("--property", action="append",
                     help="key=value (repeatable)")
    imp.set_defaults(func=cmd_image_import)

    clouds = commands.add_parser(
        "clouds-yaml", help="print a clouds.yaml for this deployment's "
        "endpoints and auth (for OS_CLIENT_CONFIG_FILE)")
    clouds.add_argument("--cloud", default="twisted-compute",
                        help="the cloud's name (OS_CLOUD)")
    clouds.add_argument("--all-in-one", action="store_true",
                        help="with compute-all's embedded defaults "
                        "(noauth) for what the config files leave unset")
    clouds.set_defaults(func=cmd_clouds_yaml)
    api = commands.add_parser("api", help="the HTTP APIs")
    api_cmds = api.add_subparsers(dest="action", required=True)
    openapi_cmd = api_cmds.add_parser(
        "openapi", help="print the OpenAPI 3.1 document of an API")
    openapi_cmd.add_argument("--api", choices=("compute", "image"),
                             default="compute")
    openapi_cmd.add_argument("--microversion", default=None,
                             help="X.Y (default: the maximum)")
    openapi_cmd.set_defaults(func=cmd_api_openapi)
    ec2 = commands.add_parser(
        "ec2-credentials",
        help="EC2 access keys of the noauth strategy (with keystone, use "
             "'openstack ec2 credentials create')")
    ec2_cmds = ec2.add_subparsers(dest="action", required=True)
    ec2_create = ec2_cmds.add_parser(
        "create", help="make an access key and secret (the secret is "
        "printed once)")
    ec2_create.add_argument("--user", required=True)
    ec2_create.add_argument("--project", required=True)
    ec2_create.set_defaults(func=cmd_ec2_credentials_create)
    ec2_list = ec2_cmds.add_parser("list", help="access keys (no secrets)")
    ec2_list.add_argument("--user")
    ec2_list.add_argument("--project")
    ec2_list.set_defaults(func=cmd_ec2_credentials_list)
    ec2_delete = ec2_cmds.add_parser("delete", help="remove an access key")
    ec2_delete.add_argument("access")
    ec2_delete.set_defaults(func=cmd_ec2_credentials_delete)

    network = commands.add_parser("network", help="guest networking")
    network_cmds = network.add_subparsers(dest="action", required=True)
    redirect = network_cmds.add_parser(
        "metadata-redirect",
        help="add (or remove) the NAT rule that sends guests' "
             "169.254.169.254:80 on a libvirt network's bridge to this "
             "host's metadata API")
    redirect.add_argument("--network", default="default",
                          help="libvirt network (default: default)")
    redirect.add_argument("--remove", action="store_true")
    redirect.add_argument("--dry-run", action="store_true",
                          help="print the iptables command only")
    redirect.set_defaults(func=cmd_network_metadata_redirect)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        conf = config_mod.load(args.config_file)
        return args.func(conf, args)
    except config_mod.ConfigError as exc:
        print(f"compute-manage: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback
        message = getattr(exc, "message", None) or str(exc)
        print(f"compute-manage: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
