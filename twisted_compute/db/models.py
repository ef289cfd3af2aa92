"""The schema, as SQLAlchemy Core tables.

Queries use Core (``select``/``insert`` on these tables) inside ``def
thd(conn)`` functions and return attrs records; no ORM session ever leaves
a DB thread.  The Alembic migrations under ``alembic/versions`` create
exactly these tables; a test checks that the two agree.
"""

from __future__ import annotations

import datetime

import sqlalchemy as sa

metadata = sa.MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})


def utcnow() -> datetime.datetime:
    """Naive UTC now: what every timestamp column stores."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _timestamps():
    return [
        sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
        sa.Column("updated_at", sa.DateTime, nullable=True, onupdate=utcnow),
    ]


instances = sa.Table(
    "instances", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    *_timestamps(),
    sa.Column("deleted_at", sa.DateTime, nullable=True),
    # 0 while live; the row id once soft-deleted (Nova's convention).
    sa.Column("deleted", sa.Integer, nullable=False, default=0),
    sa.Column("user_id", sa.String(255), nullable=False),
    sa.Column("project_id", sa.String(255), nullable=False),
    sa.Column("display_name", sa.String(255), nullable=False, default=""),
    sa.Column("display_description", sa.Text, nullable=True),
    sa.Column("hostname", sa.String(255), nullable=True),
    sa.Column("host", sa.String(255), nullable=True),
    sa.Column("node", sa.String(255), nullable=True),
    sa.Column("launched_on", sa.String(255), nullable=True),
    sa.Column("launched_at", sa.DateTime, nullable=True),
    sa.Column("terminated_at", sa.DateTime, nullable=True),
    sa.Column("availability_zone", sa.String(255), nullable=True),
    sa.Column("image_ref", sa.String(255), nullable=True),
    sa.Column("kernel_id", sa.String(255), nullable=True),
    sa.Column("ramdisk_id", sa.String(255), nullable=True),
    sa.Column("key_name", sa.String(255), nullable=True),
    sa.Column("key_data", sa.Text, nullable=True),
    sa.Column("vm_state", sa.String(32), nullable=False),
    sa.Column("task_state", sa.String(64), nullable=True),
    sa.Column("power_state", sa.Integer, nullable=False, default=0),
    sa.Column("instance_type_id", sa.Integer, nullable=True),
    sa.Column("memory_mb", sa.Integer, nullable=False, default=0),
    sa.Column("vcpus", sa.Integer, nullable=False, default=0),
    sa.Column("root_gb", sa.Integer, nullable=False, default=0),
    sa.Column("ephemeral_gb", sa.Integer, nullable=False, default=0),
    # A snapshot of the flavor (with extra specs) taken at create time.
    sa.Column("flavor", sa.JSON, nullable=False),
    sa.Column("user_data", sa.Text, nullable=True),
    sa.Column("config_drive", sa.String(255), nullable=False, default=""),
    sa.Column("reservation_id", sa.String(255), nullable=True),
    sa.Column("launch_index", sa.Integer, nullable=False, default=0),
    sa.Column("locked", sa.Boolean, nullable=False, default=False),
    sa.Column("locked_by", sa.String(16), nullable=True),
    sa.Column("locked_reason", sa.String(255), nullable=True),
    sa.Column("access_ip_v4", sa.String(39), nullable=True),
    sa.Column("access_ip_v6", sa.String(39), nullable=True),
    sa.Column("progress", sa.Integer, nullable=False, default=0),
    # Network info as the API shows it: {"net": [{"addr":..., ...}]}.
    sa.Column("addresses", sa.JSON, nullable=False),
    sa.Column("security_groups", sa.JSON, nullable=False),
    sa.Column("system_metadata", sa.JSON, nullable=False),
    # What the scheduler needs: requested networks, az, group, hints.
    sa.Column("request_spec", sa.JSON, nullable=False),
    # While it moves: the MigrationContext (old and new flavor, source and
    # destination), else NULL.
    sa.Column("migration_context", sa.JSON, nullable=True),
    sa.Index("ix_instances_project_id_deleted", "project_id", "deleted"),
    sa.Index("ix_instances_host_deleted", "host", "deleted"),
    sa.Index("ix_instances_updated_at", "updated_at"),
    sa.Index("ix_instances_reservation_id", "reservation_id"),
)

instance_metadata = sa.Table(
    "instance_metadata", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("instance_uuid", sa.String(36), nullable=False, index=True),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("value", sa.String(255), nullable=True),
    sa.UniqueConstraint("instance_uuid", "key"),
)

tags = sa.Table(
    "tags", metadata,
    sa.Column("resource_id", sa.String(36), primary_key=True),
    sa.Column("tag", sa.String(80), primary_key=True),
    sa.Index("ix_tags_tag", "tag"),
)

instance_faults = sa.Table(
    "instance_faults", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
    sa.Column("instance_uuid", sa.String(36), nullable=False, index=True),
    sa.Column("code", sa.Integer, nullable=False),
    sa.Column("message", sa.String(255), nullable=False),
    sa.Column("details", sa.Text, nullable=True),
    sa.Column("host", sa.String(255), nullable=True),
)

instance_actions = sa.Table(
    "instance_actions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    *_timestamps(),
    sa.Column("action", sa.String(255), nullable=False),
    sa.Column("instance_uuid", sa.String(36), nullable=False, index=True),
    sa.Column("request_id", sa.String(255), nullable=False),
    sa.Column("user_id", sa.String(255), nullable=True),
    sa.Column("project_id", sa.String(255), nullable=True),
    sa.Column("start_time", sa.DateTime, nullable=False),
    sa.Column("finish_time", sa.DateTime, nullable=True),
    sa.Column("message", sa.String(255), nullable=True),
)

instance_actions_events = sa.Table(
    "instance_actions_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("action_id", sa.Integer,
              sa.ForeignKey("instance_actions.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("event", sa.String(255), nullable=False),
    sa.Column("start_time", sa.DateTime, nullable=False),
    sa.Column("finish_time", sa.DateTime, nullable=True),
    sa.Column("result", sa.String(255), nullable=True),
    sa.Column("traceback", sa.Text, nullable=True),
    sa.Column("host", sa.String(255), nullable=True),
    sa.Column("details", sa.Text, nullable=True),
)

flavors = sa.Table(
    "flavors", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    *_timestamps(),
    sa.Column("flavorid", sa.String(255), nullable=False, unique=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("memory_mb", sa.Integer, nullable=False),
    sa.Column("vcpus", sa.Integer, nullable=False),
    sa.Column("root_gb", sa.Integer, nullable=False),
    sa.Column("ephemeral_gb", sa.Integer, nullable=False, default=0),
    sa.Column("swap", sa.Integer, nullable=False, default=0),
    sa.Column("rxtx_factor", sa.Float, nullable=False, default=1.0),
    sa.Column("vcpu_weight", sa.Integer, nullable=True),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("is_public", sa.Boolean, nullable=False, default=True),
    sa.Column("description", sa.Text, nullable=True),
)

flavor_extra_specs = sa.Table(
    "flavor_extra_specs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("flavor_id", sa.Integer,
              sa.ForeignKey("flavors.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("value", sa.String(255), nullable=True),
    sa.UniqueConstraint("flavor_id", "key"),
)

flavor_projects = sa.Table(
    "flavor_projects", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("flavor_id", sa.Integer,
              sa.ForeignKey("flavors.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("project_id", sa.String(255), nullable=False),
    sa.UniqueConstraint("flavor_id", "project_id"),
)

key_pairs = sa.Table(
    "key_pairs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    *_timestamps(),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("user_id", sa.String(255), nullable=False),
    sa.Column("fingerprint", sa.String(255), nullable=False),
    sa.Column("public_key", sa.Text, nullable=False),
    sa.Column("type", sa.String(16), nullable=False, default="ssh"),
    sa.UniqueConstraint("user_id", "name"),
)

# Per-project (user_id "") and per-user overrides of the configured quotas.
quotas = sa.Table(
    "quotas", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    *_timestamps(),
    sa.Column("project_id", sa.String(255), nullable=False),
    sa.Column("user_id", sa.String(255), nullable=False, default=""),
    sa.Column("resource", sa.String(255), nullable=False),
    sa.Column("hard_limit", sa.Integer, nullable=False),
    sa.UniqueConstraint("project_id", "user_id", "resource"),
)

# Overrides of the configured quotas per quota class; the "default" class
# gives every project its defaults.
quota_classes = sa.Table(
    "quota_classes", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    *_timestamps(),
    sa.Column("class_name", sa.String(255), nullable=False),
    sa.Column("resource", sa.String(255), nullable=False),
    sa.Column("hard_limit", sa.Integer, nullable=False),
    sa.UniqueConstraint("class_name", "resource"),
)

# The external events (network-vif-plugged, ...) each instance received.
instance_external_events = sa.Table(
    "instance_external_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    *_timestamps(),
    sa.Column("instance_uuid", sa.String(36), nullable=False, index=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("tag", sa.String(255), nullable=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("request_id", sa.String(255), nullable=True),
)

# One row per project, locked (SELECT ... FOR UPDATE) while a create checks
# and consumes quota, so that concurrent creates cannot both pass the check.
project_locks = sa.Table(
    "project_locks", metadata,
    sa.Column("project_id", sa.String(255), primary_key=True),
    sa.Column("generation", sa.Integer, nullable=False, default=0),
)

server_groups = sa.Table(
    "server_groups", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    *_timestamps(),
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("user_id", sa.String(255), nullable=False),
    sa.Column("project_id", sa.String(255), nullable=False, index=True),
    sa.Column("policy", sa.String(64), nullable=False),
    sa.Column("rules", sa.JSON, nullable=False),
)

server_group_members = sa.Table(
    "server_group_members", metadata,
    sa.Column("group_id", sa.Integer,
              sa.ForeignKey("server_groups.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("instance_uuid", sa.String(36), primary_key=True),
)

services = sa.Table(
    "services", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    *_timestamps(),
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("binary", sa.String(255), nullable=False),
    sa.Column("topic", sa.String(255), nullable=True),
    sa.Column("report_count", sa.Integer, nullable=False, default=0),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("disabled_reason", sa.String(255), nullable=True),
    sa.Column("forced_down", sa.Boolean, nullable=False, default=False),
    sa.Column("last_seen_up", sa.DateTime, nullable=True),
    sa.Column("version", sa.Integer, nullable=False, default=0),
    sa.UniqueConstraint("host", "binary"),
)

compute_nodes = sa.Table(
    "compute_nodes", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    *_timestamps(),
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    sa.Column("service_id", sa.Integer, nullable=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("hypervisor_hostname", sa.String(255), nullable=False),
    sa.Column("hypervisor_type", sa.String(255), nullable=False),
    sa.Column("hypervisor_version", sa.Integer, nullable=False, default=0),
    sa.Column("host_ip", sa.String(39), nullable=True),
    sa.Column("vcpus", sa.Integer, nullable=False),
    sa.Column("memory_mb", sa.Integer, nullable=False),
    sa.Column("local_gb", sa.Integer, nullable=False),
    sa.Column("vcpus_used", sa.Integer, nullable=False, default=0),
    sa.Column("memory_mb_used", sa.Integer, nullable=False, default=0),
    sa.Column("local_gb_used", sa.Integer, nullable=False, default=0),
    sa.Column("running_vms", sa.Integer, nullable=False, default=0),
    sa.Column("cpu_info", sa.Text, nullable=False, default="{}"),
    #: What the host's ``uptime`` says, as its agent last reported it.
    sa.Column("uptime", sa.Text, nullable=True),
    sa.Column("cpu_allocation_ratio", sa.Float, nullable=False,
              default=16.0),
    sa.Column("ram_allocation_ratio", sa.Float, nullable=False,
              default=1.5),
    sa.Column("disk_allocation_ratio", sa.Float, nullable=False,
              default=1.0),
    sa.Column("deleted", sa.Integer, nullable=False, default=0),
    sa.UniqueConstraint("host", "hypervisor_hostname", "deleted"),
)

aggregates = sa.Table(
    "aggregates", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    *_timestamps(),
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("metadata", sa.JSON, nullable=False),
)

aggregate_hosts = sa.Table(
    "aggregate_hosts", metadata,
    sa.Column("aggregate_id", sa.Integer,
              sa.ForeignKey("aggregates.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("host", sa.String(255), primary_key=True),
)

images = sa.Table(
    "images", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    *_timestamps(),
    sa.Column("name", sa.String(255), nullable=True),
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("visibility", sa.String(20), nullable=False),
    sa.Column("owner", sa.String(255), nullable=True, index=True),
    sa.Column("disk_format", sa.String(20), nullable=True),
    sa.Column("container_format", sa.String(20), nullable=True),
    sa.Column("size", sa.BigInteger, nullable=True),
    sa.Column("virtual_size", sa.BigInteger, nullable=True),
    sa.Column("checksum", sa.String(32), nullable=True),
    sa.Column("os_hash_algo", sa.String(64), nullable=True),
    sa.Column("os_hash_value", sa.String(128), nullable=True),
    sa.Column("min_disk", sa.Integer, nullable=False, default=0),
    sa.Column("min_ram", sa.Integer, nullable=False, default=0),
    sa.Column("protected", sa.Boolean, nullable=False, default=False),
    sa.Column("os_hidden", sa.Boolean, nullable=False, default=False),
    sa.Column("properties", sa.JSON, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    # Where the bits are, relative to the image store directory.
    sa.Column("location", sa.String(1024), nullable=True),
)

console_auth_tokens = sa.Table(
    "console_auth_tokens", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    *_timestamps(),
    # SHA-256 of the token, hex; the token itself is never stored.
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("console_type", sa.String(255), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("port", sa.Integer, nullable=False),
    sa.Column("tls_port", sa.Integer, nullable=True),
    sa.Column("internal_access_path", sa.String(255), nullable=True),
    sa.Column("instance_uuid", sa.String(36), nullable=False, index=True),
    # Unix time (seconds) after which the token is refused.
    sa.Column("expires", sa.Integer, nullable=False, index=True),
)

# EC2 access keys of the noauth strategy (compute-manage ec2-credentials);
# with keystone, Keystone keeps them.  The secret is stored as the client
# presents it: Signature V4 needs it to recompute the signature.
ec2_credentials = sa.Table(
    "ec2_credentials", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    *_timestamps(),
    sa.Column("access", sa.String(64), nullable=False, unique=True),
    sa.Column("secret", sa.String(128), nullable=False),
    sa.Column("user_id", sa.String(255), nullable=False),
    sa.Column("project_id", sa.String(255), nullable=False, index=True),
)

# RunInstances' ClientToken: one reservation per token and project.
ec2_client_tokens = sa.Table(
    "ec2_client_tokens", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    *_timestamps(),
    sa.Column("project_id", sa.String(255), nullable=False),
    sa.Column("client_token", sa.String(64), nullable=False),
    sa.Column("reservation_id", sa.String(255), nullable=False),
    sa.UniqueConstraint("project_id", "client_token"),
)

migrations = sa.Table(
    "migrations", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    *_timestamps(),
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    sa.Column("instance_uuid", sa.String(36), nullable=False, index=True),
    sa.Column("status", sa.String(255), nullable=False),
    sa.Column("migration_type", sa.String(32), nullable=False),
    sa.Column("source_compute", sa.String(255), nullable=True),
    sa.Column("source_node", sa.String(255), nullable=True),
    sa.Column("dest_compute", sa.String(255), nullable=True),
    sa.Column("dest_node", sa.String(255), nullable=True),
    sa.Column("dest_host", sa.String(255), nullable=True),
    sa.Column("old_instance_type_id", sa.Integer, nullable=True),
    sa.Column("new_instance_type_id", sa.Integer, nullable=True),
    sa.Column("hidden", sa.Boolean, nullable=False, default=False),
    sa.Column("memory_total", sa.BigInteger, nullable=True),
    sa.Column("memory_processed", sa.BigInteger, nullable=True),
    sa.Column("memory_remaining", sa.BigInteger, nullable=True),
    sa.Column("disk_total", sa.BigInteger, nullable=True),
    sa.Column("disk_processed", sa.BigInteger, nullable=True),
    sa.Column("disk_remaining", sa.BigInteger, nullable=True),
    sa.Column("user_id", sa.String(255), nullable=True),
    sa.Column("project_id", sa.String(255), nullable=True),
    sa.Column("cross_cell_move", sa.Boolean, nullable=False, default=False),
    sa.Column("deleted", sa.Integer, nullable=False, default=0),
    sa.Index("ix_migrations_source_compute_status", "source_compute",
             "status"),
    sa.Index("ix_migrations_dest_compute_status", "dest_compute", "status"),
    sa.Index("ix_migrations_updated_at", "updated_at"),
)
