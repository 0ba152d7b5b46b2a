"""The operator's tooling: the ``phonefleet`` command and what it starts on one machine.

``main`` the commands (``up``, ``down``, ``status``, ``token create``); ``bring_up`` the steps
of ``up`` and its record; ``admin`` what the CLI does as the operator; ``health`` the checks
of ``status``; ``steps`` the console. The launcher: ``cluster_ports`` (every port of a
cluster), ``ray_layout`` (a node's folders), ``ray_nodes`` (a Ray node started and stopped
by pid: the head, or a phone host's worker node) and ``ray_head`` (the local head and its
record), ``serve_app`` (deploying the Serve app). ``embedded_postgres``, ``embedded_redis`` and
``embedded_servers``: the servers used when no URLs are set; ``processes`` their pid files
and signals. ``demo_fleet``: the simulated fleet of ``up --demo``.
"""
