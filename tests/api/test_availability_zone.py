"""``/os-availability-zone`` through the real pipeline."""

from tests.api.infra_rows import insert_aggregate, insert_service
from tests.base import APITestCase


class AvailabilityZoneTests(APITestCase):
    def test_no_services_no_zones(self):
        response = self.get("/v2.1/os-availability-zone", token="u:p")
        self.assertEqual(response.json, {"availabilityZoneInfo": []})

    def test_list(self):
        self.run_db(insert_service, host="c1")
        self.run_db(insert_service, host="c2")
        self.run_db(insert_service, host="c3", disabled=True)
        self.run_db(insert_service, host="ctl", binary="nova-conductor")
        self.run_db(insert_aggregate, "a", ["c2"], zone="az2")
        self.run_db(insert_aggregate, "b", ["c3"], zone="az3")
        info = self.get("/v2.1/os-availability-zone", token="u:p",
                        version="2.79").json["availabilityZoneInfo"]
        self.assertEqual(info, [
            {"zoneName": "az2", "zoneState": {"available": True},
             "hosts": None},
            {"zoneName": "nova", "zoneState": {"available": True},
             "hosts": None},
            {"zoneName": "az3", "zoneState": {"available": False},
             "hosts": None},
        ])

    def test_detail(self):
        self.run_db(insert_service, host="c1")
        self.run_db(insert_service, host="ctl", binary="nova-conductor",
                    seen_ago=3600)
        self.assertFault(self.get("/v2.1/os-availability-zone/detail",
                                  token="u:p"), 403)
        info = self.get("/v2.1/os-availability-zone/detail").json[
            "availabilityZoneInfo"]
        zones = {z["zoneName"]: z for z in info}
        self.assertEqual(set(zones), {"internal", "nova"})
        compute = zones["nova"]["hosts"]["c1"]["nova-compute"]
        self.assertEqual((compute["available"], compute["active"]),
                         (True, True))
        self.assertEqual(set(compute), {"available", "active",
                                        "updated_at"})
        conductor = zones["internal"]["hosts"]["ctl"]["nova-conductor"]
        self.assertFalse(conductor["available"])
