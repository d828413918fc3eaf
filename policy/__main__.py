"""The CrossGuard pack: `pulumi preview --policy-pack policy`. Rules live in rules.py."""

from pulumi_policy import PolicyPack

from rules import policies

PolicyPack(name="testinfra-rules", policies=policies())
