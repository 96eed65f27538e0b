"""salabim components without monitors: what both engines (:mod:`e3.sim.engine`, the E3 dispatch
model, and :mod:`e3.sim.serving`, the fairness and placement model) do to every long-lived
component they create.

salabim keeps a level monitor of every status change per component by default: a list that grows
with the horizon, and several interpreter steps per event. :func:`quiet_component` switches the
monitors off and swaps in :class:`LeanStatusMonitor`, so memory stays flat in the number of tasks
and each event costs less. :class:`QuietEnvironment` is the environment both engines create per run,
without the animation texts salabim builds for every environment. None of these changes a state or
the order of events.
"""

from __future__ import annotations

import salabim as sim

from e3.sim import salabim_patch

salabim_patch.apply()  # salabim's per-run frame lookup and per-component signature checks (see there)


class LeanStatusMonitor(sim.salabim._StatusMonitor):
    """salabim's status monitor with monitoring off, minus the per-change bookkeeping.

    salabim sets ``status._value`` several times per event; with the monitor off, its ``tally``
    only stores the value and its time (after clearing a statistics cache and checking for the
    reserved "off" value, which no status takes). This does just that: same states, same event
    order, fewer interpreter steps per event.
    """

    @property
    def _value(self):
        return self._tally

    @_value.setter
    def _value(self, value) -> None:
        self._tally = value
        self._ttally = self.env._now


class QuietEnvironment(sim.Environment):
    """A salabim ``Environment`` that draws no model name and no clock.

    salabim builds three animation objects for the model name and one for the clock in every
    environment, animated or not; ``an_modelname`` and ``an_clocktext`` are the hooks salabim
    documents for changing that ("may be overridden"). The engines never animate and create one
    environment per run, where those objects were about 3 % of an operating-point job (py-spy).
    """

    def an_modelname(self) -> None:
        """No model-name text (the engines never animate)."""

    def an_clocktext(self) -> None:
        """No clock text (the engines never animate)."""


def quiet_component(comp: sim.Component) -> None:
    """Switch off ``comp``'s status and mode monitors and make its status monitor lean.

    Call it in the component's ``setup``, before its first event. Salabim's own status monitor
    class is the only one replaced (a subclass someone set is left alone).
    """
    comp.status.monitor(False)
    comp.mode.monitor(False)
    if type(comp.status) is sim.salabim._StatusMonitor and not comp.status._monitor:
        comp.status.__class__ = LeanStatusMonitor
