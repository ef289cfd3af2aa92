"""``/os-keypairs`` through the real pipeline."""

import base64
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tests.base import APITestCase


def ssh_line(key) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.OpenSSH,
        serialization.PublicFormat.OpenSSH).decode() + " me@host"


def md5_of(line: str) -> str:
    digest = hashlib.md5(base64.b64decode(line.split()[1])).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


class KeypairsTests(APITestCase):
    def create(self, name="kp", public_key=None, token="alice:p",
               version="2.79", **extra):
        keypair = {"name": name, **extra}
        if public_key is not None:
            keypair["public_key"] = public_key
        return self.post("/v2.1/os-keypairs", {"keypair": keypair},
                         token=token, version=version)

    def test_import_ed25519_and_ecdsa(self):
        for name, key in (("ed", ed25519.Ed25519PrivateKey.generate()),
                          ("ec", ec.generate_private_key(ec.SECP256R1()))):
            line = ssh_line(key)
            response = self.create(name, line)
            self.assertEqual(response.code, 201, response)
            body = response.json["keypair"]
            self.assertEqual(set(body), {"name", "public_key",
                                         "fingerprint", "type", "user_id"})
            self.assertEqual(body["fingerprint"], md5_of(line))
            self.assertEqual(body["user_id"], "alice")
            self.assertEqual(body["type"], "ssh")

    def test_generate_returns_private_key(self):
        response = self.create("gen", version="2.1")
        self.assertEqual(response.code, 200, response)
        body = response.json["keypair"]
        self.assertEqual(set(body), {"name", "public_key", "fingerprint",
                                     "user_id", "private_key"})
        private = serialization.load_pem_private_key(
            body["private_key"].encode(), password=None)
        public = private.public_key().public_bytes(
            serialization.Encoding.OpenSSH,
            serialization.PublicFormat.OpenSSH).decode()
        self.assertEqual(body["public_key"].split()[:2], public.split())
        self.assertEqual(body["fingerprint"], md5_of(body["public_key"]))
        # The private key is never shown again.
        shown = self.get("/v2.1/os-keypairs/gen", token="alice:p").json
        self.assertNotIn("private_key", shown["keypair"])

    def test_generate_x509(self):
        response = self.create("cert", type="x509")
        self.assertEqual(response.code, 201, response)
        body = response.json["keypair"]
        self.assertEqual(body["type"], "x509")
        self.assertIn("BEGIN CERTIFICATE", body["public_key"])
        self.assertEqual(len(body["fingerprint"].split(":")), 20)

    def test_invalid_public_key(self):
        self.assertFault(self.create("bad", "ssh-rsa notbase64"), 400,
                         "fingerprint")
        self.assertFault(self.create("bad", "hello"), 400)
        self.assertFault(self.create("bad/name", version="2.1"), 400,
                         "unsafe")
        self.assertFault(self.create("x" * 256), 400, "name")
        self.assertFault(self.create("t", type="rsa"), 400, "type")
        # type is not known before 2.2
        self.assertFault(self.create("t", type="ssh", version="2.1"), 400,
                         "type")

    def test_292_refuses_generation_and_allows_at_and_dot(self):
        name = "me.and.myself@this.nice.domain.com mooh."
        line = ssh_line(ed25519.Ed25519PrivateKey.generate())
        # before 2.92: generated on request, '@' and '.' unsafe
        self.assertEqual(self.create("gen", version="2.91").code, 201)
        self.assertFault(self.create(name, line, version="2.91"), 400,
                         "unsafe")
        # from 2.92: a public key is required
        self.assertFault(self.create("gen2", version="2.92"), 400,
                         "public_key")
        response = self.create(name, line, version="2.92", type="ssh")
        self.assertEqual(response.code, 201, response)
        self.assertEqual(set(response.json["keypair"]), {
            "name", "public_key", "fingerprint", "type", "user_id"})
        self.assertEqual(response.json["keypair"]["name"], name)
        self.assertFault(self.create("bad/name", line, version="2.92"),
                         400, "unsafe")

    def test_show_shapes(self):
        line = ssh_line(ed25519.Ed25519PrivateKey.generate())
        self.create("kp", line)
        old = self.get("/v2.1/os-keypairs/kp", token="alice:p").json
        self.assertEqual(set(old["keypair"]), {
            "name", "public_key", "fingerprint", "user_id", "deleted",
            "created_at", "updated_at", "deleted_at", "id"})
        self.assertIs(old["keypair"]["deleted"], False)
        new = self.get("/v2.1/os-keypairs/kp", token="alice:p",
                       version="2.79").json["keypair"]
        self.assertEqual(new["type"], "ssh")
        listed = self.get("/v2.1/os-keypairs", token="alice:p").json
        self.assertEqual(listed, {"keypairs": [{"keypair": {
            "name": "kp", "public_key": line,
            "fingerprint": md5_of(line)}}]})

    def test_users_do_not_see_each_other(self):
        line = ssh_line(ed25519.Ed25519PrivateKey.generate())
        self.create("kp", line)
        self.assertEqual(self.get("/v2.1/os-keypairs", token="bob:p").json,
                         {"keypairs": []})
        self.assertFault(self.get("/v2.1/os-keypairs/kp", token="bob:p"),
                         404)
        self.assertFault(self.delete("/v2.1/os-keypairs/kp", token="bob:p"),
                         404)
        # bob may not ask for alice's either
        self.assertFault(self.get("/v2.1/os-keypairs?user_id=alice",
                                  token="bob:p", version="2.10"), 403)
        # the same name is free for another user
        self.assertEqual(self.create("kp", line, token="bob:p").code, 201)
        # an admin may
        listed = self.get("/v2.1/os-keypairs?user_id=alice",
                          version="2.10").json["keypairs"]
        self.assertEqual([k["keypair"]["name"] for k in listed], ["kp"])

    def test_admin_creates_for_user(self):
        line = ssh_line(ed25519.Ed25519PrivateKey.generate())
        response = self.create("forbob", line, token="admin:admin",
                               user_id="bob", version="2.10")
        self.assertEqual(response.json["keypair"]["user_id"], "bob")
        self.assertEqual(self.get("/v2.1/os-keypairs/forbob",
                                  token="bob:p").code, 200)
        self.assertFault(self.create("x", line, token="alice:p",
                                     user_id="bob"), 403)

    def test_duplicate_and_delete(self):
        line = ssh_line(ed25519.Ed25519PrivateKey.generate())
        self.create("kp", line)
        self.assertFault(self.create("kp", line), 409, "kp")
        self.assertEqual(self.delete("/v2.1/os-keypairs/kp", token="alice:p",
                                     version="2.1").code, 202)
        self.create("kp", line)
        self.assertEqual(self.delete("/v2.1/os-keypairs/kp", token="alice:p",
                                     version="2.2").code, 204)
        self.assertFault(self.get("/v2.1/os-keypairs/kp", token="alice:p"),
                         404)

    def test_quota(self):
        self.put("/v2.1/os-quota-sets/p?user_id=alice",
                 {"quota_set": {"key_pairs": 1}})
        line = ssh_line(ed25519.Ed25519PrivateKey.generate())
        self.assertEqual(self.create("one", line).code, 201)
        self.assertFault(self.create("two", line), 403, "key pairs")
        # bob in the same project has his own count
        self.assertEqual(self.create("one", line, token="bob:p").code, 201)

    def test_pagination(self):
        line = ssh_line(ed25519.Ed25519PrivateKey.generate())
        for name in ("c", "a", "b"):
            self.create(name, line)
        page = self.get("/v2.1/os-keypairs?limit=2", token="alice:p",
                        version="2.35").json
        self.assertEqual([k["keypair"]["name"] for k in page["keypairs"]],
                         ["a", "b"])
        self.assertIn("marker=b", page["keypairs_links"][0]["href"])
        page = self.get("/v2.1/os-keypairs?limit=2&marker=b",
                        token="alice:p", version="2.35").json
        self.assertEqual([k["keypair"]["name"] for k in page["keypairs"]],
                         ["c"])
        self.assertNotIn("keypairs_links", page)
        # before 2.35 there is no paging
        old = self.get("/v2.1/os-keypairs?limit=2", token="alice:p",
                       version="2.34").json
        self.assertEqual(len(old["keypairs"]), 3)
        self.assertFault(self.get("/v2.1/os-keypairs?marker=zz",
                                  token="alice:p", version="2.35"), 400)
