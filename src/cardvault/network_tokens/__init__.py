"""Network tokens of enrolled cards: provisioning, lifecycle and cryptograms."""
