"""Instance data (COCO / LVIS json through pycocotools) and prompt rules."""

from .coco import DataError, Instance, InstanceSet
from .prompt_rules import PROMPT_RULES, box_prompt, interior_point, paper_point, random_point

__all__ = [
    "DataError",
    "Instance",
    "InstanceSet",
    "PROMPT_RULES",
    "box_prompt",
    "interior_point",
    "paper_point",
    "random_point",
]
