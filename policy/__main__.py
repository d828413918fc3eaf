"""The CrossGuard pack: `pulumi preview --policy-pack policy`. Rules live in rules.py."""

import threading

from pulumi_policy import PolicyPack
from rules import policies  # first: it puts the project on sys.path

from config.credentials import load_detector  # isort: skip

# The engine starts the program only once the pack serves, and the pack's first resource would then
# wait ~0.25 s for detect-secrets to load: it loads beside, while the program starts.
threading.Thread(target=load_detector, daemon=True).start()

PolicyPack(name="testinfra-rules", policies=policies())
