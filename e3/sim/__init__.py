"""The simulation kernel (salabim): the E3 engine of the base-station edge server (paper sections
2 and 4.1: ``engine``, ``observation``, ``truth``, ``scenario``, ``workload``, ``trace``,
``backlog``, ``load``, ``events``) and the primitives every system's engine is built from
(``components``, ``nodes``, ``network``, ``devices``, ``policy_api``, ``jain``, ``jsq``). The
fairness system's serving engine is :mod:`e3.fairness.engine`, the placement engine
:mod:`e3.placement.engine`. The kernel imports nothing above it (``tests/test_layering.py``)."""
