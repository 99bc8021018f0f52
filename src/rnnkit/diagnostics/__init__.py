"""See inside a recurrent model: gradient flow through time, step Jacobians, gate activity.

``gradient_flow(model, x, y, loss)`` returns a :class:`Report` (``to_json``, ``to_text``, ``plot``);
``jacobians`` holds the step Jacobians ∂s_t/∂s_{t-1} of each cell family, written from the equations.
"""

from .flow import CellFlow, Report, gradient_flow
from .jacobians import step_jacobian

__all__ = ["CellFlow", "Report", "gradient_flow", "step_jacobian"]
