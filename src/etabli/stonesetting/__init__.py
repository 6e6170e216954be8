"""Setting plans, the check before a piece goes to the setter, and the control on its return."""
