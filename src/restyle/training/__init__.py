"""Training: one loop for every engine that learns a network (imported only to train)."""
