"""Alert rules: evaluate them, move their instances through pending -> firing -> resolved, group
what fires on one topic into incidents, and queue one message per incident (see the README, "How
alerts decide").

- `kinds/`: one class per rule kind (what it observes and how it explains it), in a registry;
- `machine`: the state machine, pure;
- `incidents`: grouping, inhibition and when to notify, pure;
- `messages`: the words of a notification;
- `engine`: one evaluation, read -> decide -> write in one transaction.
"""

from listener.alerts.engine import (SOURCE_DOWN_AFTER, SOURCE_DOWN_RULE, Evaluation, NoticeRecord, check_rules,
                                    down_sources, evaluate, evaluate_all, spec_of)
from listener.alerts.kinds import Observation, kind_class
from listener.alerts.machine import RuleSpec, Transition, label_order, labels_key

__all__ = ["SOURCE_DOWN_AFTER", "SOURCE_DOWN_RULE", "Evaluation", "NoticeRecord", "Observation", "RuleSpec",
           "Transition", "check_rules", "down_sources", "evaluate", "evaluate_all", "kind_class", "label_order",
           "labels_key", "spec_of"]
