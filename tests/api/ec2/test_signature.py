"""The signature module against AWS's Signature Version 4 test suite
(the published ``aws-sig-v4-test-suite``: each case's request, canonical
request, string to sign and Authorization header, written here as
data), and Version 2."""

from twisted.trial.unittest import SynchronousTestCase

from twisted_compute.api.ec2 import signature as sig

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SCOPE = sig.Scope("AKIDEXAMPLE", "20150830", "us-east-1", "service")
DATE = "20150830T123600Z"
HOST = "example.amazonaws.com"

#: name -> (method, path, query pairs, headers, body, canonical request
#: or None, string to sign or None, signature)
VECTORS = {
    "get-vanilla": (
        "GET", "/", [], [("Host", HOST), ("X-Amz-Date", DATE)], b"",
        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z"
        "\n\nhost;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "AWS4-HMAC-SHA256\n20150830T123600Z\n"
        "20150830/us-east-1/service/aws4_request\n"
        "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    "get-vanilla-query-order-key": (
        "GET", "/", [("Param1", "value2"), ("Param1", "Value1")],
        [("Host", HOST), ("X-Amz-Date", DATE)], b"",
        "GET\n/\nParam1=Value1&Param1=value2\nhost:example.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "AWS4-HMAC-SHA256\n20150830T123600Z\n"
        "20150830/us-east-1/service/aws4_request\n"
        "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89",
        "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"),
    "get-vanilla-query-order-key-case": (
        "GET", "/", [("Param2", "value2"), ("Param1", "value1")],
        [("Host", HOST), ("X-Amz-Date", DATE)], b"", None, None,
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
    "post-vanilla": (
        "POST", "/", [], [("Host", HOST), ("X-Amz-Date", DATE)], b"",
        None, None,
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
    "post-x-www-form-urlencoded": (
        "POST", "/", [],
        [("Content-Type", "application/x-www-form-urlencoded"),
         ("Host", HOST), ("X-Amz-Date", DATE)], b"Param1=value1",
        "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\n"
        "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
        "content-type;host;x-amz-date\n"
        "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
        "AWS4-HMAC-SHA256\n20150830T123600Z\n"
        "20150830/us-east-1/service/aws4_request\n"
        "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
        "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
}


class SignatureV4TestSuite(SynchronousTestCase):
    def test_vectors(self):
        import hashlib
        for name, (method, path, query, headers, body, creq, sts,
                   signature) in VECTORS.items():
            signed = sorted({h.lower() for h, _ in headers})
            canonical = sig.canonical_request(
                method, path, query, headers, signed,
                hashlib.sha256(body).hexdigest())
            if creq is not None:
                self.assertEqual(canonical, creq, name)
            to_sign = sig.string_to_sign(DATE, SCOPE.text, canonical)
            if sts is not None:
                self.assertEqual(to_sign, sts, name)
            self.assertEqual(sig.signature_v4(SECRET, SCOPE, to_sign),
                             signature, name)

    def test_a_changed_request_changes_the_signature(self):
        method, path, query, headers, body, _, _, signature = \
            VECTORS["get-vanilla-query-order-key-case"]
        canonical = sig.canonical_request(
            method, path, [("Param2", "value3"), ("Param1", "value1")],
            headers, ["host", "x-amz-date"], sig.EMPTY_SHA256)
        self.assertNotEqual(sig.signature_v4(
            SECRET, SCOPE, sig.string_to_sign(DATE, SCOPE.text,
                                              canonical)), signature)

    def test_header_values_trimmed_and_joined(self):
        self.assertEqual(
            sig.canonical_headers(
                [("My-Header1", "  a   b  "), ("my-header1", "c"),
                 ("Host", HOST)], ["host", "my-header1"]),
            "host:example.amazonaws.com\nmy-header1:a b,c\n")

    def test_unreserved_and_utf8_encoding(self):
        self.assertEqual(sig.canonical_query([("k", "a b/ü~")]),
                         "k=a%20b%2F%C3%BC~")
        self.assertEqual(sig.canonical_uri("/a%20b"), "/a%2520b")
        self.assertEqual(sig.canonical_uri(""), "/")

    def test_parse_authorization(self):
        parsed = sig.parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/"
            "service/aws4_request, SignedHeaders=host;x-amz-date, "
            "Signature=abc", DATE)
        self.assertEqual(parsed.scope, SCOPE)
        self.assertEqual(parsed.signed_headers, ("host", "x-amz-date"))
        self.assertEqual(parsed.signature, "abc")
        for bad in ("AWS4-HMAC-SHA1 Credential=a/b/c/d/aws4_request, "
                    "SignedHeaders=host, Signature=x",
                    "AWS4-HMAC-SHA256 Credential=AKID/20150830/x/"
                    "aws4_request, SignedHeaders=host, Signature=x",
                    "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=x"):
            self.assertRaises(sig.MalformedSignature,
                              sig.parse_authorization, bad, DATE)


class SignatureV2Tests(SynchronousTestCase):
    def test_string_to_sign_and_signature(self):
        params = [("Action", "DescribeRegions"), ("Version", "2016-11-15"),
                  ("AWSAccessKeyId", "AKID"), ("SignatureMethod",
                                               "HmacSHA256"),
                  ("SignatureVersion", "2"), ("Signature", "ignored"),
                  ("Timestamp", "2015-08-30T12:36:00Z")]
        to_sign = sig.string_to_sign_v2("POST", "EC2.example.com:8773",
                                        "/", params)
        self.assertEqual(
            to_sign,
            "POST\nec2.example.com:8773\n/\nAWSAccessKeyId=AKID&"
            "Action=DescribeRegions&SignatureMethod=HmacSHA256&"
            "SignatureVersion=2&Timestamp=2015-08-30T12%3A36%3A00Z&"
            "Version=2016-11-15")
        import base64
        import hashlib
        import hmac
        self.assertEqual(
            sig.signature_v2(SECRET, "HmacSHA256", to_sign),
            base64.b64encode(hmac.new(SECRET.encode(), to_sign.encode(),
                                      hashlib.sha256).digest()).decode())
        self.assertNotEqual(sig.signature_v2(SECRET, "HmacSHA1", to_sign),
                            sig.signature_v2(SECRET, "HmacSHA256",
                                             to_sign))
