"""twistd plugins of twisted-compute: one line per role; the modules are
imported only when the role is run, so ``twistd --help`` stays fast."""

from twisted.application.service import ServiceMaker

computeApi = ServiceMaker(
    "twisted-compute API", "twisted_compute.api.tap",
    "The compute API process: OpenStack Compute v2.1, image and metadata "
    "APIs", "compute-api")
computeConductor = ServiceMaker(
    "twisted-compute conductor", "twisted_compute.conductor.tap",
    "The conductor: orchestrates builds; the agents' DB proxy",
    "compute-conductor")
computeScheduler = ServiceMaker(
    "twisted-compute scheduler", "twisted_compute.scheduler.tap",
    "The scheduler: picks hosts for new servers", "compute-scheduler")
computeAgent = ServiceMaker(
    "twisted-compute agent", "twisted_compute.compute.tap",
    "The compute agent of one hypervisor host", "compute-agent")
computeConsoleProxy = ServiceMaker(
    "twisted-compute console proxy", "twisted_compute.console.tap",
    "The console proxy: noVNC and serial consoles over websockets",
    "compute-console-proxy")
computeAll = ServiceMaker(
    "twisted-compute all-in-one", "twisted_compute.all_in_one",
    "Every role in one process, on the in-process bus and SQLite",
    "compute-all")
