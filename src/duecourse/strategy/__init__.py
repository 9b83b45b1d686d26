"""Treatment strategies: ladders as data (segments, steps, champion/challenger) and their set-based evaluation.

Public API: `load_strategy`, `parse_strategy`, `propose`, `assign_arms`, `arm_of`, the frame contracts
`FACTS`, `STEP_HISTORY`, `PROPOSALS`, and the model types. See README.md beside this file.
"""

from duecourse.strategy.arms import arm_of, assign_arms
from duecourse.strategy.ladder import FACTS, PROPOSALS, STEP_HISTORY, propose
from duecourse.strategy.loader import load_strategy, parse_strategy
from duecourse.strategy.model import Channel, Ladder, Segment, Split, Step, StepKind, StopCondition, Strategy

__all__ = [
    "FACTS",
    "PROPOSALS",
    "STEP_HISTORY",
    "Channel",
    "Ladder",
    "Segment",
    "Split",
    "Step",
    "StepKind",
    "StopCondition",
    "Strategy",
    "arm_of",
    "assign_arms",
    "load_strategy",
    "parse_strategy",
    "propose",
]
