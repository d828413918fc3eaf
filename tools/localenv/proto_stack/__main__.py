"""The ameide_core_proto prerequisite for the local environment: exports the version releases wait for."""

import pulumi

pulumi.export("version", pulumi.Config().get("version") or "local")
