"""The choices party: the patients' choices registry.

It holds NHS numbers and each person's choice history, never clinical data. Other parties use
``ChoicesRegistry`` (changes, current choices, listeners), ``policy.decide``/``policy.terms``
(who a project may include) and ``api.make_router`` (the HTTP API).
"""

from confide.choices.model import Actor, Channel, Choice, ChoiceEvent, Choices, Proxy
from confide.choices.registry import ChoicesRegistry

__all__ = ["Actor", "Channel", "Choice", "ChoiceEvent", "Choices", "ChoicesRegistry", "Proxy"]
