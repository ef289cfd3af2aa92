"""What the scheduler knows about each compute node, and the request it
matches them against.

:class:`HostManager` keeps one :class:`HostState` per compute node: the
node's last report (``compute_nodes`` joined with its compute service and
availability zone) read from the database at most every
``[scheduler] host_state_refresh_interval`` seconds, plus the *claims* this
scheduler has handed out since that report.  Placing an instance consumes
its flavor from the chosen host state at once, so a burst of requests
spreads instead of piling onto the host that looked emptiest in the last
report.  A claim is forgotten when the node reports again after it (the
report then counts the instance itself; see :data:`REPORT_GRACE_SECONDS`)
or after
``[scheduler] host_claim_timeout`` seconds.

Host states are mutable and live on the reactor thread only; the DB read
runs in the DB pool and returns plain dicts.
"""

from __future__ import annotations

import datetime
import json
from typing import Any, Iterable

import attrs
from twisted.internet import defer
from twisted.python.failure import Failure

from twisted_compute.db.services import is_up
from twisted_compute.log import Logger

_EPOCH = datetime.datetime(1970, 1, 1)

#: A claim outlives a node report made less than this many seconds after
#: it: the agent reads its instances a moment before the report is
#: written, and the conductor records the instance's host a moment after
#: the scheduler picked it, so such a report may not count the instance
#: yet.  Counting it twice for a couple of seconds errs on the safe side.
REPORT_GRACE_SECONDS = 2.0


def utc_from_seconds(seconds: float) -> datetime.datetime:
    """Naive UTC datetime of an epoch time (what DB timestamps hold)."""
    return _EPOCH + datetime.timedelta(seconds=seconds)


def epoch(value: datetime.datetime | None) -> float | None:
    """Seconds since the epoch of a naive UTC timestamp (None stays
    None)."""
    if value is None:
        return None
    return (value - _EPOCH).total_seconds()


# --- the request ----------------------------------------------------------

def _as_list(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


@attrs.define
class RequestSpec:
    """The scheduler's view of a request spec dict (see
    :class:`~twisted_compute.scheduler.manager.SchedulerManager`), plus
    the state of one ``select_destinations`` call: the group's member
    hosts grow as instances of the call are placed."""

    memory_mb: int = 0
    vcpus: int = 0
    root_gb: int = 0
    ephemeral_gb: int = 0
    swap_mb: int = 0
    extra_specs: dict[str, str] = attrs.Factory(dict)
    image_id: str | None = None
    image_properties: dict[str, Any] = attrs.Factory(dict)
    availability_zone: str | None = None
    num_instances: int = 1
    group_uuid: str | None = None
    group_policy: str | None = None
    group_rules: dict[str, Any] = attrs.Factory(dict)
    #: host -> number of group members on it (from the DB, plus the
    #: instances placed so far by this call).
    group_hosts: dict[str, int] = attrs.Factory(dict)
    force_hosts: list[str] = attrs.Factory(list)
    force_nodes: list[str] = attrs.Factory(list)
    ignore_hosts: list[str] = attrs.Factory(list)
    requested_host: str | None = None
    requested_node: str | None = None
    project_id: str | None = None
    user_id: str | None = None
    scheduler_hints: dict[str, Any] = attrs.Factory(dict)
    #: Naive UTC "now" and its epoch seconds, set per call (filters that
    #: need the time read them here, so a whole call sees one instant).
    now: datetime.datetime = _EPOCH
    now_seconds: float = 0.0

    @property
    def disk_mb(self) -> int:
        """Local disk the instance needs, in MiB (root + ephemeral +
        swap, as Nova's DiskFilter counts it)."""
        return (self.root_gb + self.ephemeral_gb) * 1024 + self.swap_mb

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> "RequestSpec":
        flavor = spec.get("flavor") or {}
        image = spec.get("image") or {}
        group = spec.get("group") or {}
        hints = dict(spec.get("scheduler_hints") or {})
        zone = spec.get("availability_zone") or None
        force_hosts = _as_list(spec.get("force_hosts"))
        force_nodes = _as_list(spec.get("force_nodes"))
        if zone and ":" in zone:
            # The admin's "zone:host[:node]" form of availability_zone.
            zone, _, rest = zone.partition(":")
            host, _, node = rest.partition(":")
            zone = zone or None
            if host:
                force_hosts = [host]
            if node:
                force_nodes = [node]
        destination = spec.get("requested_destination") or {}
        if not group and hints.get("group"):
            # Only the uuid is known; the manager reads policy and rules.
            group = {"uuid": hints["group"]}
        return cls(
            memory_mb=int(flavor.get("memory_mb") or 0),
            vcpus=int(flavor.get("vcpus") or 0),
            root_gb=int(flavor.get("root_gb") or 0),
            ephemeral_gb=int(flavor.get("ephemeral_gb") or 0),
            swap_mb=int(flavor.get("swap") or 0),
            extra_specs=dict(flavor.get("extra_specs") or {}),
            image_id=image.get("id"),
            image_properties=dict(image.get("properties") or {}),
            availability_zone=zone,
            num_instances=int(spec.get("num_instances") or 1),
            group_uuid=group.get("uuid"),
            group_policy=group.get("policy"),
            group_rules=dict(group.get("rules") or {}),
            force_hosts=force_hosts,
            force_nodes=force_nodes,
            ignore_hosts=_as_list(spec.get("ignore_hosts")),
            requested_host=destination.get("host"),
            requested_node=(destination.get("node") or
                            destination.get("hypervisor_hostname")),
            project_id=spec.get("project_id"),
            user_id=spec.get("user_id"),
            scheduler_hints=hints,
        )


# --- host states ----------------------------------------------------------

@attrs.frozen
class ServiceStatus:
    """The compute service of a host, as :func:`is_up` reads it."""

    id: int
    disabled: bool
    disabled_reason: str | None
    forced_down: bool
    last_seen_up: datetime.datetime | None
    created_at: datetime.datetime | None
    updated_at: datetime.datetime | None


@attrs.define(eq=False)
class Claim:
    """Resources handed out on a host since its last report."""

    instance_uuid: str
    at: float  # epoch seconds (the scheduler's clock)
    memory_mb: int
    disk_mb: int
    vcpus: int


def _supported_instances(hypervisor_type: str, cpu_info: dict
                         ) -> tuple[tuple[str | None, str, str], ...]:
    """``(arch, hv_type, vm_mode)`` triples the node can run: the
    ``supported_instances`` list in its ``cpu_info`` when the driver
    reports one, else its arch with its hypervisor type in ``hvm``
    mode."""
    reported = cpu_info.get("supported_instances")
    if isinstance(reported, list):
        triples = []
        for item in reported:
            if isinstance(item, (list, tuple)) and len(item) == 3:
                triples.append((
                    str(item[0]).lower() if item[0] else None,
                    str(item[1]).lower(), str(item[2]).lower()))
        return tuple(triples)
    arch = cpu_info.get("arch")
    return ((str(arch).lower() if arch else None,
             hypervisor_type.lower(), "hvm"),)


class HostState:
    """One compute node: its report, its service, and live claims.

    Derived figures (``usable_*``, ``free_*``) are kept up to date on
    every change so that filters and weighers read plain attributes.
    """

    __slots__ = (
        "uuid", "node_id", "host", "nodename", "hypervisor_type",
        "hypervisor_version", "cpu_info_raw", "cpu_info",
        "supported_instances", "vcpus_total", "total_ram_mb",
        "total_disk_gb", "vcpus_used", "ram_used_mb", "disk_used_gb",
        "running_vms", "cpu_allocation_ratio", "ram_allocation_ratio",
        "disk_allocation_ratio", "service", "zones", "report_time",
        "seen_at", "claims", "claimed_ram_mb", "claimed_disk_mb", "claimed_vcpus",
        "num_instances", "free_ram_mb", "free_disk_mb", "free_vcpus",
        "ram_limit_mb", "disk_limit_mb", "vcpu_limit", "usable_ram_mb",
        "usable_disk_mb", "usable_vcpus",
    )

    def __init__(self, uuid: str, host: str, nodename: str):
        self.uuid = uuid
        self.host = host
        self.nodename = nodename
        self.node_id = 0
        self.hypervisor_type = ""
        self.hypervisor_version = 0
        self.cpu_info_raw = None
        self.cpu_info: dict[str, Any] = {}
        self.supported_instances: tuple = ()
        self.vcpus_total = self.total_ram_mb = self.total_disk_gb = 0
        self.vcpus_used = self.ram_used_mb = self.disk_used_gb = 0
        self.running_vms = 0
        self.cpu_allocation_ratio = 1.0
        self.ram_allocation_ratio = 1.0
        self.disk_allocation_ratio = 1.0
        self.service: ServiceStatus | None = None
        self.zones: tuple[str, ...] = ()
        self.report_time = 0.0
        #: Epoch seconds the compute service was last seen up (None:
        #: no compute service, or forced down: never up).
        self.seen_at: float | None = None
        self.claims: list[Claim] = []
        self.claimed_ram_mb = self.claimed_disk_mb = self.claimed_vcpus = 0
        self.num_instances = 0
        self.free_ram_mb = self.free_disk_mb = 0
        self.free_vcpus = 0.0
        self.ram_limit_mb = self.disk_limit_mb = self.vcpu_limit = 0.0
        self.usable_ram_mb = self.usable_disk_mb = self.usable_vcpus = 0.0

    def __repr__(self):
        return (f"<HostState {self.host}/{self.nodename} ram "
                f"{self.usable_ram_mb:.0f} disk {self.usable_disk_mb:.0f} "
                f"vcpu {self.usable_vcpus:.1f} claims {len(self.claims)}>")

    # --- updates -----------------------------------------------------------

    def update_from_row(self, row: dict[str, Any], zones: Iterable[str],
                        default_ratios: tuple[float, float, float]) -> None:
        """Take a node's report (a row of
        :func:`twisted_compute.db.services.compute_hosts`)."""
        self.node_id = row["id"]
        self.host = row["host"]
        self.nodename = row["hypervisor_hostname"]
        self.hypervisor_type = row["hypervisor_type"] or ""
        self.hypervisor_version = int(row["hypervisor_version"] or 0)
        raw = row["cpu_info"]
        if raw != self.cpu_info_raw:
            try:
                parsed = json.loads(raw) if raw else {}
            except ValueError:
                parsed = {}
            self.cpu_info = parsed if isinstance(parsed, dict) else {}
            self.cpu_info_raw = raw
        self.supported_instances = _supported_instances(
            self.hypervisor_type, self.cpu_info)
        self.vcpus_total = int(row["vcpus"] or 0)
        self.total_ram_mb = int(row["memory_mb"] or 0)
        self.total_disk_gb = int(row["local_gb"] or 0)
        self.vcpus_used = int(row["vcpus_used"] or 0)
        self.ram_used_mb = int(row["memory_mb_used"] or 0)
        self.disk_used_gb = int(row["local_gb_used"] or 0)
        self.running_vms = int(row["running_vms"] or 0)
        cpu, ram, disk = default_ratios
        # A ratio of 0 (or none) in the row means "the scheduler's
        # default", as in Nova before placement.
        self.cpu_allocation_ratio = row["cpu_allocation_ratio"] or cpu
        self.ram_allocation_ratio = row["ram_allocation_ratio"] or ram
        self.disk_allocation_ratio = row["disk_allocation_ratio"] or disk
        if row.get("service_id") is None:
            self.service = None
        else:
            self.service = ServiceStatus(
                id=row["service_id"],
                disabled=bool(row["service_disabled"]),
                disabled_reason=row["service_disabled_reason"],
                forced_down=bool(row["service_forced_down"]),
                last_seen_up=row["service_last_seen_up"],
                created_at=row["service_created_at"],
                updated_at=row["service_updated_at"])
        service = self.service
        self.seen_at = None if service is None or service.forced_down \
            else epoch(service.last_seen_up or service.updated_at
                       or service.created_at)
        self.zones = tuple(zones)
        self.report_time = epoch(row["updated_at"] or
                                    row["created_at"]) or 0.0
        self._recompute()

    def expire_claims(self, now: float, timeout: float) -> list[Claim]:
        """Forget claims the last report already counts, or too old;
        returns the forgotten ones."""
        report = self.report_time - REPORT_GRACE_SECONDS
        kept = [c for c in self.claims
                if c.at >= report and now - c.at < timeout]
        if len(kept) == len(self.claims):
            return []
        gone = [c for c in self.claims if c not in kept]
        self.claims = kept
        self._recompute()
        return gone

    def consume(self, claim: Claim) -> None:
        self.claims.append(claim)
        self._recompute()

    def release(self, claim: Claim) -> None:
        try:
            self.claims.remove(claim)
        except ValueError:
            return
        self._recompute()

    def _recompute(self) -> None:
        ram = disk = vcpus = 0
        for claim in self.claims:
            ram += claim.memory_mb
            disk += claim.disk_mb
            vcpus += claim.vcpus
        self.claimed_ram_mb = ram
        self.claimed_disk_mb = disk
        self.claimed_vcpus = vcpus
        self.num_instances = self.running_vms + len(self.claims)
        ram_used = self.ram_used_mb + ram
        disk_used_mb = self.disk_used_gb * 1024 + disk
        vcpus_used = self.vcpus_used + vcpus
        self.free_ram_mb = self.total_ram_mb - ram_used
        self.free_disk_mb = self.total_disk_gb * 1024 - disk_used_mb
        self.ram_limit_mb = self.total_ram_mb * self.ram_allocation_ratio
        self.disk_limit_mb = (self.total_disk_gb * 1024 *
                              self.disk_allocation_ratio)
        self.vcpu_limit = self.vcpus_total * self.cpu_allocation_ratio
        self.usable_ram_mb = self.ram_limit_mb - ram_used
        self.usable_disk_mb = self.disk_limit_mb - disk_used_mb
        self.usable_vcpus = self.vcpu_limit - vcpus_used
        self.free_vcpus = self.usable_vcpus

    # --- views -------------------------------------------------------------

    def is_up(self, now: datetime.datetime, service_down_time: float
              ) -> bool:
        """Whether the host's compute service is alive (and not forced
        down); disabled is a separate question."""
        return self.service is not None and is_up(self.service, now,
                                                  service_down_time)


# --- the cache --------------------------------------------------------------

class HostManager:
    """Host states from the database, cached, with this scheduler's claims.

    ``clock`` gives the time (``seconds()``); ``db`` is a
    :class:`~twisted_compute.db.pool.DBService`.
    """

    log = Logger()

    def __init__(self, conf, db_service, clock):
        self.conf = conf
        self.db = db_service
        self.clock = clock
        self.refresh_interval = float(
            conf.scheduler.host_state_refresh_interval)
        self.claim_timeout = float(conf.scheduler.host_claim_timeout)
        self.default_ratios = (float(conf.cpu_allocation_ratio),
                               float(conf.ram_allocation_ratio),
                               float(conf.disk_allocation_ratio))
        self._states: dict[str, HostState] = {}
        self._ordered: list[HostState] = []
        self._loaded_at: float | None = None
        self._refreshing: list[defer.Deferred] | None = None
        #: instance uuid -> (host state, claim), for live claims.
        self._claimed: dict[str, tuple[HostState, Claim]] = {}
        self.refreshes = 0
        self._generation = 0

    def invalidate(self) -> None:
        """Make the next request read the database again (a read already
        under way does not count: it may predate the change)."""
        self._loaded_at = None
        self._generation += 1

    def age(self) -> float | None:
        """Seconds since the cached host states were read (None: never,
        or invalidated)."""
        if self._loaded_at is None:
            return None
        return self.clock.seconds() - self._loaded_at

    def is_fresh(self) -> bool:
        age = self.age()
        return age is not None and age < self.refresh_interval

    async def host_states(self, force: bool = False) -> list[HostState]:
        """Every known host state (in node id order).

        Within ``refresh_interval`` of the last read the cache is used as
        it is.  Up to twice that, the cache is still used but a new read
        starts in the background (so a request does not wait for the
        database).  Older, invalidated or ``force``: the request waits
        for a new read.  Concurrent callers share one read."""
        age = self.age()
        interval = self.refresh_interval
        if force or age is None or age >= 2 * interval:
            await self._shared_refresh()
            if self._loaded_at is None:
                # Invalidated while that read was under way.
                await self._shared_refresh()
        elif age >= interval:
            self._shared_refresh().addErrback(
                lambda f: self.log.failure(
                    "reading the compute nodes failed; keeping the host "
                    "states of {age:.1f} s ago", f, age=age))
        self._expire()
        return self._ordered

    def _shared_refresh(self) -> defer.Deferred:
        """A Deferred firing when the DB read in progress (or a new one)
        is merged; each caller gets its own Deferred."""
        waiter: defer.Deferred = defer.Deferred()
        if self._refreshing is not None:
            self._refreshing.append(waiter)
        else:
            self._refreshing = [waiter]
            defer.ensureDeferred(self._refresh()).addBoth(self._refreshed)
        return waiter

    def _refreshed(self, result) -> None:
        waiters, self._refreshing = self._refreshing or [], None
        for waiter in waiters:
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(None)

    async def _refresh(self) -> None:
        started = self.clock.seconds()
        generation = self._generation
        data = await self.db.services.compute_hosts()
        self._merge(data)
        if generation == self._generation:
            self._loaded_at = started
        self.refreshes += 1

    def _merge(self, data: dict[str, Any]) -> None:
        zones = data["zones"]
        default_zone = (self.conf.default_availability_zone,)
        old = self._states
        states: dict[str, HostState] = {}
        ordered = []
        for row in data["nodes"]:
            state = old.get(row["uuid"])
            if state is None:
                state = HostState(row["uuid"], row["host"],
                                  row["hypervisor_hostname"])
            state.update_from_row(row, zones.get(row["host"]) or
                                  default_zone, self.default_ratios)
            states[row["uuid"]] = state
            ordered.append(state)
        self._states = states
        self._ordered = ordered

    def _expire(self) -> None:
        now = self.clock.seconds()
        timeout = self.claim_timeout
        for state in self._ordered:
            if state.claims:
                for claim in state.expire_claims(now, timeout):
                    self._claimed.pop(claim.instance_uuid, None)
        if len(self._claimed) > 100 and len(self._claimed) > 2 * sum(
                len(s.claims) for s in self._ordered):
            # Claims of hosts that left the database.
            self._claimed = {
                uuid: (state, claim)
                for uuid, (state, claim) in self._claimed.items()
                if claim in state.claims}

    def claimed_host(self, instance_uuid: str) -> str | None:
        """The host this scheduler placed ``instance_uuid`` on, while its
        claim lives."""
        entry = self._claimed.get(instance_uuid)
        if entry is None or entry[1] not in entry[0].claims:
            return None
        return entry[0].host

    def claim(self, state: HostState, spec: RequestSpec,
              instance_uuid: str) -> Claim:
        """Consume ``spec``'s flavor on ``state`` for ``instance_uuid``."""
        claim = Claim(instance_uuid=instance_uuid, at=self.clock.seconds(),
                      memory_mb=spec.memory_mb, disk_mb=spec.disk_mb,
                      vcpus=spec.vcpus)
        state.consume(claim)
        self._claimed[instance_uuid] = (state, claim)
        return claim

    def release(self, state: HostState, claim: Claim) -> None:
        """Give back a claim (its request failed as a whole)."""
        state.release(claim)
        entry = self._claimed.get(claim.instance_uuid)
        if entry is not None and entry[1] is claim:
            del self._claimed[claim.instance_uuid]
