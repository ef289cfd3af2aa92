"""Nova's versioned notifications on a real RabbitMQ, read with a plain
AMQP client (:mod:`.harness.amqp_watch`: txamqp alone).

One ``compute-all`` (local bus, SQLite, fake driver) whose notifications
go to RabbitMQ (``[oslo_messaging_notifications] transport_url``, a
vhost of the test's own); a queue of the test's bound to the exchange
with ``versioned_notifications.*`` sees one server booted, stopped,
started, rebooted and deleted, in order, in oslo.messaging's 2.0
envelope.
"""

from __future__ import annotations

import json
import os
import sys

from tests.integration.harness import (
    ADMIN, VERSION, RabbitVhost, TwistdTestCase, api_boot, api_image,
    api_wait_servers, run_command, wait_until)

WATCH = os.path.join(os.path.dirname(__file__), "harness", "amqp_watch.py")
#: the test's own queue, bound to every versioned notification
QUEUE = "tc_it_watch"

#: what the server's life must show, in this order (instance.update
#: left out: it comes between these)
LIFE = ["instance.create.start", "instance.create.end",
        "instance.power_off.start", "instance.power_off.end",
        "instance.power_on.start", "instance.power_on.end",
        "instance.reboot.start", "instance.reboot.end",
        "instance.delete.start", "instance.delete.end"]


def watch(*args: str) -> list[dict]:
    # -I: the script's own directory (harness/, with its http.py) must
    # not shadow the standard library.
    done = run_command([sys.executable, "-I", WATCH, *args], timeout=60)
    if done.returncode != 0:
        raise AssertionError(f"amqp_watch {args[0]} failed:\n{done.stderr}")
    return [json.loads(line) for line in done.stdout.splitlines() if line]


class NotificationsOnRabbitMQTests(TwistdTestCase):
    def test_a_server_life_in_notifications(self):
        vhost = RabbitVhost().create()
        self.addCleanup(vhost.delete)
        url = vhost.url.replace("rabbit://", "amqp://", 1)
        host = "notify-" + os.urandom(3).hex()
        exchange = "tc_it_" + host
        watch("bind", url, exchange, QUEUE, "versioned_notifications.*")
        proc = self.start_twistd(
            role="compute-all", apis=("osapi_compute", "image"), options={
                "DEFAULT": {"host": host, "report_interval": 1,
                            "periodic_fuzzy_delay": 0,
                            "control_exchange": exchange},
                "notifications": {"notification_format": "versioned"},
                "oslo_messaging_notifications": {
                    "driver": "messagingv2", "transport_url": vhost.url}})
        image = api_image(proc)
        [server] = api_boot(proc, "1", image)
        api_wait_servers(proc, [server], timeout=30, done=("ACTIVE",))
        for action, status in (({"os-stop": None}, "SHUTOFF"),
                               ({"os-start": None}, "ACTIVE"),
                               ({"reboot": {"type": "SOFT"}}, "ACTIVE")):
            response = proc.post(f"/v2.1/servers/{server}/action", action,
                                 token=ADMIN, version=VERSION)
            self.assertEqual(response.code, 202, response)
            api_wait_servers(proc, [server], timeout=30, done=(status,))
        response = proc.delete(f"/v2.1/servers/{server}", token=ADMIN,
                               version=VERSION)
        self.assertEqual(response.code, 204, response)

        seen: list[dict] = []

        def life_told():
            seen.extend(watch("drain", url, QUEUE))
            return [m for m in map(_message, seen)
                    if m["event_type"] == "instance.delete.end"]

        wait_until(life_told, 30, interval=0.5,
                   message="instance.delete.end on RabbitMQ")
        for delivery in seen:
            self.assertEqual(delivery["exchange"], exchange)
            envelope = json.loads(delivery["body"])
            self.assertEqual(set(envelope), {"oslo.version",
                                             "oslo.message"})
            self.assertEqual(envelope["oslo.version"], "2.0")
            message = json.loads(envelope["oslo.message"])
            self.assertEqual(delivery["routing_key"],
                             "versioned_notifications."
                             + message["priority"].lower())
            for key in ("message_id", "publisher_id", "event_type",
                        "priority", "payload", "timestamp"):
                self.assertIn(key, message)
            self.assertEqual(message["payload"]["nova_object.namespace"],
                             "nova")
        messages = [_message(d) for d in seen]
        mine = [m for m in messages
                if m["event_type"].startswith("instance.")
                and m["payload"]["nova_object.data"]["uuid"] == server]
        self.assertEqual([m["event_type"] for m in mine
                          if m["event_type"] != "instance.update"], LIFE)
        for m in mine:
            if m["event_type"] != "instance.update":
                self.assertEqual(m["publisher_id"], f"nova-compute:{host}")
        # the API set the tasks: its instance.update, before the agent's
        api_updates = [m for m in mine if m["publisher_id"]
                       == f"nova-api:{host}"]
        self.assertEqual(
            [m["payload"]["nova_object.data"]["state_update"][
                "nova_object.data"]["new_task_state"] for m in api_updates],
            ["powering-off", "powering-on", "rebooting", "deleting"])
        end = mine[-1]["payload"]
        self.assertEqual(end["nova_object.name"], "InstanceActionPayload")
        self.assertEqual(end["nova_object.data"]["state"], "deleted")
        created = [m for m in mine
                   if m["event_type"] == "instance.create.end"][0]
        data = created["payload"]["nova_object.data"]
        self.assertEqual((data["host"], data["state"], data["image_uuid"],
                          data["flavor"]["nova_object.data"]["flavorid"]),
                         (host, "active", image, "1"))
        # and the services said they started
        services = {m["publisher_id"] for m in messages
                    if m["event_type"] == "service.update"}
        self.assertIn(f"nova-compute:{host}", services)


def _message(delivery: dict) -> dict:
    return json.loads(json.loads(delivery["body"])["oslo.message"])
