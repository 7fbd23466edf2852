"""planning: pure functions from a GemmaDeployment and the hardware to a Plan."""

from gemma_operator.planning.images import CATALOG_IMAGES, RuntimeImages, runtime_images
from gemma_operator.planning.inventory import InventoryError, NodeInfo, inventory_from_node_list, node_from_object
from gemma_operator.planning.planner import plan
from gemma_operator.planning.result import Plan, PlanResult, Refused, plan_report, sized_plan

__all__ = [
    "CATALOG_IMAGES",
    "InventoryError",
    "NodeInfo",
    "Plan",
    "PlanResult",
    "Refused",
    "RuntimeImages",
    "inventory_from_node_list",
    "node_from_object",
    "plan",
    "plan_report",
    "runtime_images",
    "sized_plan",
]
