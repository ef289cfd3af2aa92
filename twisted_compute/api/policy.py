"""Policy: who may do what.

Rules have defaults in code (:data:`DEFAULT_RULES`, Nova's names) and may be
overridden in ``policy.yaml``.  The rule language is the part of
oslo.policy's that operators use: ``role:X``, ``project_id:%(project_id)s``,
``user_id:%(user_id)s``, ``is_admin:True``, ``rule:other``, ``@`` (always),
``!`` (never), ``and``, ``or``, ``not`` and parentheses.
"""

from __future__ import annotations

from typing import Any, Callable

import yaml

from twisted_compute import exception
from twisted_compute.context import RequestContext

ADMIN = "rule:admin_api"
READER = "rule:project_reader_or_admin"
MEMBER = "rule:project_member_or_admin"
ANY = "@"

DEFAULT_RULES: dict[str, str] = {
    "context_is_admin": "role:admin",
    "admin_api": "is_admin:True",
    "project_reader_api": "role:reader and project_id:%(project_id)s",
    "project_member_api": "role:member and project_id:%(project_id)s",
    "project_reader_or_admin": "rule:project_reader_api or rule:admin_api",
    "project_member_or_admin": "rule:project_member_api or rule:admin_api",
    # servers
    "os_compute_api:servers:index": READER,
    "os_compute_api:servers:detail": READER,
    "os_compute_api:servers:index:get_all_tenants": ADMIN,
    "os_compute_api:servers:detail:get_all_tenants": ADMIN,
    "os_compute_api:servers:allow_all_filters": ADMIN,
    "os_compute_api:servers:show": READER,
    "os_compute_api:servers:show:host_status": ADMIN,
    "os_compute_api:servers:create": MEMBER,
    "os_compute_api:servers:create:forced_host": ADMIN,
    "os_compute_api:servers:create:requested_destination": ADMIN,
    "os_compute_api:servers:update": MEMBER,
    "os_compute_api:servers:delete": MEMBER,
    "os_compute_api:servers:reboot": MEMBER,
    "os_compute_api:servers:start": MEMBER,
    "os_compute_api:servers:stop": MEMBER,
    "os_compute_api:servers:rebuild": MEMBER,
    "os_compute_api:servers:rebuild:trusted_certs": MEMBER,
    "os_compute_api:os-rescue": MEMBER,
    "os_compute_api:os-unrescue": MEMBER,
    "os_compute_api:servers:trigger_crash_dump": MEMBER,
    "os_compute_api:servers:resize": MEMBER,
    "os_compute_api:servers:confirm_resize": MEMBER,
    "os_compute_api:servers:revert_resize": MEMBER,
    "os_compute_api:servers:create_image": MEMBER,
    "os_compute_api:os-create-backup": MEMBER,
    "os_compute_api:os-shelve:shelve": MEMBER,
    "os_compute_api:os-shelve:shelve_offload": ADMIN,
    "os_compute_api:os-shelve:unshelve": MEMBER,
    "os_compute_api:os-shelve:unshelve_to_host": ADMIN,
    "os_compute_api:os-extended-server-attributes": ADMIN,
    "os_compute_api:os-pause-server:pause": MEMBER,
    "os_compute_api:os-pause-server:unpause": MEMBER,
    "os_compute_api:os-suspend-server:suspend": MEMBER,
    "os_compute_api:os-suspend-server:resume": MEMBER,
    "os_compute_api:os-lock-server:lock": MEMBER,
    "os_compute_api:os-lock-server:unlock": MEMBER,
    "os_compute_api:os-lock-server:unlock:unlock_override": ADMIN,
    "os_compute_api:os-admin-actions:reset_state": ADMIN,
    # moves
    "os_compute_api:os-migrate-server:migrate": ADMIN,
    "os_compute_api:os-migrate-server:migrate:host": ADMIN,
    "os_compute_api:os-migrate-server:migrate_live": ADMIN,
    "os_compute_api:os-evacuate": ADMIN,
    "os_compute_api:os-migrations:index": ADMIN,
    "os_compute_api:servers:migrations:index": ADMIN,
    "os_compute_api:servers:migrations:show": ADMIN,
    "os_compute_api:servers:migrations:force_complete": ADMIN,
    "os_compute_api:servers:migrations:delete": ADMIN,
    "os_compute_api:os-admin-actions:inject_network_info": ADMIN,
    "os_compute_api:os-console-output": MEMBER,
    "os_compute_api:os-remote-consoles": MEMBER,
    "os_compute_api:os-console-auth-tokens": ADMIN,
    "os_compute_api:os-admin-password": MEMBER,
    "os_compute_api:os-server-password:show": READER,
    "os_compute_api:os-server-password:clear": MEMBER,
    "os_compute_api:server-metadata:index": READER,
    "os_compute_api:server-metadata:show": READER,
    "os_compute_api:server-metadata:create": MEMBER,
    "os_compute_api:server-metadata:update": MEMBER,
    "os_compute_api:server-metadata:update_all": MEMBER,
    "os_compute_api:server-metadata:delete": MEMBER,
    "os_compute_api:os-server-tags:index": READER,
    "os_compute_api:os-server-tags:show": READER,
    "os_compute_api:os-server-tags:update": MEMBER,
    "os_compute_api:os-server-tags:update_all": MEMBER,
    "os_compute_api:os-server-tags:delete": MEMBER,
    "os_compute_api:os-server-tags:delete_all": MEMBER,
    "os_compute_api:os-instance-actions:list": READER,
    "os_compute_api:os-instance-actions:show": READER,
    "os_compute_api:os-instance-actions:events": ADMIN,
    "os_compute_api:os-instance-actions:events:details": ADMIN,
    "os_compute_api:ips:index": READER,
    "os_compute_api:ips:show": READER,
    "os_compute_api:server-topology:index": READER,
    "os_compute_api:os-volumes-attachments:index": READER,
    "os_compute_api:os-volumes-attachments:show": READER,
    "os_compute_api:os-volumes-attachments:create": MEMBER,
    "os_compute_api:os-server-shares:index": READER,
    "os_compute_api:os-server-shares:show": READER,
    "os_compute_api:os-server-shares:create": MEMBER,
    "os_compute_api:server-topology:host:index": ADMIN,
    "os_compute_api:os-deferred-delete:force": MEMBER,
    "os_compute_api:os-deferred-delete:restore": MEMBER,
    # flavors
    "os_compute_api:os-flavor-manage:create": ADMIN,
    "os_compute_api:os-flavor-manage:update": ADMIN,
    "os_compute_api:os-flavor-manage:delete": ADMIN,
    "os_compute_api:os-flavor-extra-specs:index": READER,
    "os_compute_api:os-flavor-extra-specs:show": READER,
    "os_compute_api:os-flavor-extra-specs:create": ADMIN,
    "os_compute_api:os-flavor-extra-specs:update": ADMIN,
    "os_compute_api:os-flavor-extra-specs:delete": ADMIN,
    "os_compute_api:os-flavor-access": ADMIN,
    "os_compute_api:os-flavor-access:add_tenant_access": ADMIN,
    "os_compute_api:os-flavor-access:remove_tenant_access": ADMIN,
    # keypairs: the owner is the user
    "os_compute_api:os-keypairs:index":
        "rule:admin_api or user_id:%(user_id)s",
    "os_compute_api:os-keypairs:show":
        "rule:admin_api or user_id:%(user_id)s",
    "os_compute_api:os-keypairs:create":
        "rule:admin_api or user_id:%(user_id)s",
    "os_compute_api:os-keypairs:delete":
        "rule:admin_api or user_id:%(user_id)s",
    # quotas, limits
    "os_compute_api:os-quota-sets:show": READER,
    "os_compute_api:os-quota-sets:update": ADMIN,
    "os_compute_api:os-quota-sets:defaults": ANY,
    "os_compute_api:os-quota-sets:delete": ADMIN,
    "os_compute_api:os-quota-sets:detail": READER,
    "os_compute_api:limits": ANY,
    "os_compute_api:limits:other_project": ADMIN,
    # server groups
    "os_compute_api:os-server-groups:create": MEMBER,
    "os_compute_api:os-server-groups:delete": MEMBER,
    "os_compute_api:os-server-groups:index": READER,
    "os_compute_api:os-server-groups:index:all_projects": ADMIN,
    "os_compute_api:os-server-groups:show": READER,
    # infrastructure
    "os_compute_api:os-availability-zone:list": ANY,
    "os_compute_api:os-availability-zone:detail": ADMIN,
    "os_compute_api:os-services:list": ADMIN,
    "os_compute_api:os-services:update": ADMIN,
    "os_compute_api:os-services:delete": ADMIN,
    "os_compute_api:os-hosts:list": ADMIN,
    "os_compute_api:os-hosts:show": ADMIN,
    "os_compute_api:os-hosts:update": ADMIN,
    "os_compute_api:os-hosts:reboot": ADMIN,
    "os_compute_api:os-hosts:shutdown": ADMIN,
    "os_compute_api:os-hosts:start": ADMIN,
    "os_compute_api:os-hypervisors:list": ADMIN,
    "os_compute_api:os-hypervisors:list-detail": ADMIN,
    "os_compute_api:os-hypervisors:show": ADMIN,
    "os_compute_api:os-hypervisors:statistics": ADMIN,
    "os_compute_api:os-hypervisors:uptime": ADMIN,
    "os_compute_api:os-hypervisors:search": ADMIN,
    "os_compute_api:os-hypervisors:servers": ADMIN,
    "os_compute_api:os-aggregates:index": ADMIN,
    "os_compute_api:os-aggregates:create": ADMIN,
    "os_compute_api:os-aggregates:show": ADMIN,
    "os_compute_api:os-aggregates:update": ADMIN,
    "os_compute_api:os-aggregates:delete": ADMIN,
    "os_compute_api:os-aggregates:add_host": ADMIN,
    "os_compute_api:os-aggregates:remove_host": ADMIN,
    "os_compute_api:os-aggregates:set_metadata": ADMIN,
    "os_compute_api:os-simple-tenant-usage:show": READER,
    "os_compute_api:os-simple-tenant-usage:list": ADMIN,
    # diagnostics, quota classes, external events, image pre-caching
    "os_compute_api:os-server-diagnostics": ADMIN,
    "os_compute_api:os-quota-class-sets:show": ADMIN,
    "os_compute_api:os-quota-class-sets:update": ADMIN,
    "os_compute_api:os-server-external-events:create": ADMIN,
    "compute:aggregates:images": ADMIN,
    # image API (Glance names)
    "get_images": ANY,
    "get_image": ANY,
    "add_image": ANY,
    "modify_image": ANY,
    "delete_image": ANY,
    "upload_image": ANY,
    "download_image": ANY,
    "publicize_image": "role:admin",
    "communitize_image": ANY,
}


# --- the rule language ----------------------------------------------------

def _tokenize(text: str) -> list[str]:
    """Words and parentheses; ``%(name)s`` stays inside its word."""
    tokens: list[str] = []
    for word in text.split():
        while word.startswith("("):
            tokens.append("(")
            word = word[1:]
        closing = 0
        while word.endswith(")") and word.count("(") < word.count(")"):
            closing += 1
            word = word[:-1]
        if word:
            tokens.append(word)
        tokens.extend(")" * closing)
    return tokens

Check = Callable[[dict[str, Any], dict[str, Any], "Enforcer"], bool]


def _atom(text: str) -> Check:
    if text == "@":
        return lambda t, c, e: True
    if text == "!":
        return lambda t, c, e: False
    kind, sep, match = text.partition(":")
    if not sep:
        raise ValueError(f"bad policy check {text!r}")
    if kind == "rule":
        return lambda t, c, e: e.check_rule(match, t, c)
    if kind == "role":
        wanted = match.lower()
        return lambda t, c, e: wanted in [r.lower() for r in c["roles"]]

    def _generic(target, creds, enforcer, kind=kind, match=match):
        try:
            expected = match % target if "%(" in match else match
        except KeyError:
            return False
        actual = creds.get(kind)
        if isinstance(actual, bool):
            return str(actual) == expected
        return actual is not None and str(actual) == expected

    return _generic


def parse_rule(text: str) -> Check:
    """Compile a rule string into a check function."""
    tokens = _tokenize(text)
    if not tokens:
        return lambda t, c, e: True  # an empty rule allows (oslo.policy)
    position = 0

    def peek():
        return tokens[position] if position < len(tokens) else None

    def take():
        nonlocal position
        if position >= len(tokens):
            return None
        position += 1
        return tokens[position - 1]

    def parse_or():
        checks = [parse_and()]
        while peek() == "or":
            take()
            checks.append(parse_and())
        if len(checks) == 1:
            return checks[0]
        return lambda t, c, e: any(ch(t, c, e) for ch in checks)

    def parse_and():
        checks = [parse_not()]
        while peek() == "and":
            take()
            checks.append(parse_not())
        if len(checks) == 1:
            return checks[0]
        return lambda t, c, e: all(ch(t, c, e) for ch in checks)

    def parse_not():
        if peek() == "not":
            take()
            inner = parse_not()
            return lambda t, c, e: not inner(t, c, e)
        if peek() == "(":
            take()
            inner = parse_or()
            if take() != ")":
                raise ValueError(f"unbalanced parentheses in {text!r}")
            return inner
        token = take()
        if token is None:
            raise ValueError(f"incomplete rule {text!r}")
        return _atom(token)

    check = parse_or()
    if position != len(tokens):
        raise ValueError(f"unexpected {tokens[position]!r} in {text!r}")
    return check


class Enforcer:
    """Checks actions against the rules."""

    def __init__(self, overrides: dict[str, str] | None = None):
        self.rules_text = dict(DEFAULT_RULES)
        self.rules_text.update(overrides or {})
        self._rules: dict[str, Check] = {}
        for name, text in self.rules_text.items():
            try:
                self._rules[name] = parse_rule(text)
            except ValueError as exc:
                raise ValueError(f"policy rule {name}: {exc}") from None

    def add_defaults(self, rules: dict[str, str]) -> None:
        """Default rules of an extension: a rule already known (built in
        or from the policy file) stays as it is."""
        parsed = {name: parse_rule(text) for name, text in rules.items()
                  if name not in self.rules_text}
        for name, rule in parsed.items():
            self.rules_text[name] = rules[name]
            self._rules[name] = rule

    @classmethod
    def from_file(cls, path: str | None) -> "Enforcer":
        if not path:
            return cls()
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path} is not a mapping of rule names")
        return cls({str(k): str(v) for k, v in data.items()})

    @staticmethod
    def credentials(context: RequestContext) -> dict[str, Any]:
        return {"user_id": context.user_id,
                "project_id": context.project_id,
                "roles": list(context.roles),
                "is_admin": context.is_admin}

    def check_rule(self, name: str, target, creds) -> bool:
        rule = self._rules.get(name)
        return bool(rule and rule(target, creds, self))

    def allowed(self, context: RequestContext, action: str,
                target: dict[str, Any] | None = None) -> bool:
        if target is None:
            target = {"project_id": context.project_id,
                      "user_id": context.user_id}
        rule = self._rules.get(action)
        if rule is None:
            # Unknown actions are admin-only: fail closed.
            rule = self._rules["admin_api"]
        return bool(rule(target, self.credentials(context), self))

    def authorize(self, context: RequestContext, action: str,
                  target: dict[str, Any] | None = None) -> None:
        """Raise 403 unless ``context`` may do ``action`` on ``target``."""
        if not self.allowed(context, action, target):
            raise exception.PolicyNotAuthorized(action=action)


def sample_yaml() -> str:
    """The text of ``etc/twisted-compute/policy.yaml``: every default,
    commented out."""
    lines = ["# Policy overrides for twisted-compute.  Every rule is shown",
             "# with its default; uncomment and change what you need.", ""]
    for name, text in DEFAULT_RULES.items():
        lines.append(f'#"{name}": "{text}"')
    return "\n".join(lines) + "\n"
