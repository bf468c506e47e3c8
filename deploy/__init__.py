"""What sets the stack up: the remote's settings, the work pool, the deployments."""
