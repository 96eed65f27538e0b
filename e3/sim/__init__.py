"""The simulation kernel (salabim): the E3 engine of the base-station edge server (paper sections
2 and 4.1: ``engine``, ``observation``, ``truth``, ``scenario``, ``workload``, ``trace``,
``backlog``, ``load``), the fairness system's serving engine (``serving``, ``nodes``,
``network``) and the placement engine (``placement``, ``mobility``), with their shared
primitives (``devices``, ``components``, ``policy_api``)."""
