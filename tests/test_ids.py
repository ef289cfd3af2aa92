"""Identifiers made without system calls, secrets made from the kernel's
randomness."""

from __future__ import annotations

import collections
import uuid

from twisted.trial.unittest import SynchronousTestCase

from twisted_compute import ids


class IdsTests(SynchronousTestCase):

    def test_uuid4_is_a_version_4_uuid(self):
        made = {ids.uuid4_str() for _ in range(1000)}
        self.assertEqual(len(made), 1000)
        for text in list(made)[:50]:
            value = uuid.UUID(text)
            self.assertEqual(value.version, 4)
            self.assertEqual(value.variant, uuid.RFC_4122)

    def test_hex_id_length_and_digits(self):
        for length in (8, 12, 32):
            value = ids.hex_id(length)
            self.assertEqual(len(value), length)
            int(value, 16)

    def test_secret_string_uses_only_the_alphabet_evenly(self):
        alphabet = "abcdefghij"  # 256 % 10 != 0: rejection matters
        text = ids.secret_string(alphabet, 20000)
        self.assertEqual(len(text), 20000)
        counts = collections.Counter(text)
        self.assertEqual(set(counts), set(alphabet))
        # Each letter within 15% of its fair share (2,000).
        for letter, count in counts.items():
            self.assertTrue(1700 < count < 2300, (letter, count))

    def test_secret_string_refuses_a_huge_alphabet(self):
        self.assertRaises(ValueError, ids.secret_string, "x" * 257, 4)

    def test_reseed_after_fork_changes_the_sequence(self):
        ids.reseed()
        first = ids.hex_id()
        ids.reseed()
        self.assertNotEqual(first, ids.hex_id())
