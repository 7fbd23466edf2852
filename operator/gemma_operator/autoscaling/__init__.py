"""autoscaling: pure decisions from serving load to replica counts, and the simulation that measures them."""
