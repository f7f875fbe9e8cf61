"""Layer 2, the classroom: live training, the shared training service and the class's board."""
