"""Time-indexed storage of members per dataset, with site descriptions kept apart."""
