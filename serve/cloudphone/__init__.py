"""The platform's admin console, unchanged (issue 12 §2): its 19 calls answered at their
paths under ``/cloudphone`` (the platform's gateway points ``SCHEDULER_SERVICE_URL`` at
``http://<phonefleet>/cloudphone``), in the original's envelope and shapes.

The mount only translates: each call parses the console's body, runs the same command or read
as the native route (``services.commands.handle``, the same services), and renders what the
console reads. No rule lives here.
"""
